"""ComfyUI's prompt validation (``execution.validate_prompt``), reproduced for the fake server.

Same checks, same order, same 400 shapes as recorded in ``tests/data/comfyui/invalid_prompts.json``
(ComfyUI v0.3.64): missing class_type, unknown class (first one only, empty node_errors), no output node,
then each output validated recursively through its links, with per-input errors collected in node_errors.
Conversion semantics: INT via int(), FLOAT via float(); min/max enforced, step not; COMBO exact match.
"""

from __future__ import annotations

import traceback
from typing import Any

Result = tuple[bool, Any, list[str], dict[str, Any]]


def _error(type_: str, message: str, details: str) -> dict[str, Any]:
    return {"type": type_, "message": message, "details": details, "extra_info": {}}


def _input_specs(info: dict[str, Any]) -> dict[str, tuple[Any, str, dict[str, Any], list[Any]]]:
    """name -> (type or option list, category, extra_info, raw spec)."""
    out = {}
    for category in ("required", "optional"):
        for name, raw in (info.get("input", {}).get(category) or {}).items():
            extra = raw[1] if len(raw) > 1 and isinstance(raw[1], dict) else {}
            out[name] = (raw[0], category, extra, raw)
    return out


class Validator:
    def __init__(self, object_info: dict[str, Any]):
        self.object_info = object_info

    def validate_prompt(self, prompt: dict[str, Any], partial_targets: list[str] | None = None) -> Result:
        for node_id, node in prompt.items():
            if "class_type" not in node:
                return False, _error("invalid_prompt", "Cannot execute because a node is missing the class_type "
                                     "property.", f"Node ID '#{node_id}'"), [], {}
        outputs: list[str] = []
        for node_id, node in prompt.items():
            info = self.object_info.get(node["class_type"])
            if info is None:
                return False, _error("invalid_prompt", f"Cannot execute because node {node['class_type']} does "
                                     "not exist.", f"Node ID '#{node_id}'"), [], {}
            if info.get("output_node") and (partial_targets is None or node_id in partial_targets):
                outputs.append(node_id)
        if not outputs:
            return False, _error("prompt_no_outputs", "Prompt has no outputs", ""), [], {}
        return self._validate_outputs(prompt, outputs)

    def _validate_outputs(self, prompt: dict[str, Any], outputs: list[str]) -> Result:
        validated: dict[str, tuple[bool, list[dict[str, Any]], str]] = {}
        good: list[str] = []
        failed: list[tuple[str, list[dict[str, Any]]]] = []
        node_errors: dict[str, Any] = {}
        for out in outputs:
            try:
                ok, reasons, _ = self._validate_inputs(prompt, out, validated)
            except Exception as exc:  # the real server reports a crashing validator the same way
                ok, reasons = False, [{"type": "exception_during_validation", "message": "Exception when "
                                       "validating node", "details": str(exc), "extra_info": {
                                           "exception_type": type(exc).__name__,
                                           "traceback": traceback.format_tb(exc.__traceback__)}}]
                validated[out] = (False, reasons, out)
            if ok:
                good.append(out)
                continue
            failed.append((out, reasons))
            for node_id, (valid, node_reasons, _) in validated.items():
                if not valid and node_reasons:
                    entry = node_errors.setdefault(node_id, {"errors": node_reasons, "dependent_outputs": [],
                                                             "class_type": prompt[node_id]["class_type"]})
                    entry["dependent_outputs"].append(out)
        if not good:
            details = "\n".join(f"{e['message']}: {e['details']}" for _, errs in failed for e in errs)
            return False, _error("prompt_outputs_failed_validation", "Prompt outputs failed validation",
                                 details), [], node_errors
        return True, None, good, node_errors

    def _validate_inputs(self, prompt: dict[str, Any], node_id: str,
                         validated: dict[str, tuple[bool, list[dict[str, Any]], str]]
                         ) -> tuple[bool, list[dict[str, Any]], str]:
        if node_id in validated:
            return validated[node_id]
        node = prompt[node_id]
        inputs = node.get("inputs", {})
        specs = _input_specs(self.object_info[node["class_type"]])
        errors: list[dict[str, Any]] = []
        valid = True
        for name, (input_type, category, extra, raw) in specs.items():
            if name not in inputs:
                if category == "required":
                    errors.append({"type": "required_input_missing", "message": "Required input is missing",
                                   "details": name, "extra_info": {"input_name": name}})
                continue
            value = inputs[name]
            info = raw if len(raw) > 1 else [raw[0], {}]
            if isinstance(value, list):
                outcome = self._check_link(prompt, name, value, input_type, info, validated)
                if outcome is False:
                    valid = False
                elif isinstance(outcome, dict):
                    errors.append(outcome)
                continue
            error = self._check_value(inputs, name, value, input_type, extra, info)
            if error:
                errors.append(error)
        result = (False, errors, node_id) if errors or not valid else (True, [], node_id)
        validated[node_id] = result
        return result

    def _check_link(self, prompt: dict[str, Any], name: str, value: list[Any], input_type: Any,
                    info: list[Any], validated: dict[str, Any]) -> dict[str, Any] | bool | None:
        if len(value) != 2:
            return {"type": "bad_linked_input", "message": "Bad linked input, must be a length-2 list of "
                    "[node_id, slot_index]", "details": name,
                    "extra_info": {"input_name": name, "input_config": info, "received_value": value}}
        source = value[0]
        source_class = prompt[source]["class_type"]  # a KeyError here is caught by the caller, as in ComfyUI
        received = self.object_info[source_class]["output"][value[1]]
        if received != input_type and "*" not in (received, input_type):
            return {"type": "return_type_mismatch", "message": "Return type mismatch between linked nodes",
                    "details": f"{name}, received_type({received}) mismatch input_type({input_type})",
                    "extra_info": {"input_name": name, "input_config": info, "received_type": received,
                                   "linked_node": value}}
        try:
            ok, _, _ = self._validate_inputs(prompt, source, validated)
        except Exception as exc:
            validated[source] = (False, [{
                "type": "exception_during_inner_validation", "message": "Exception when validating inner node",
                "details": str(exc), "extra_info": {
                    "input_name": name, "input_config": info, "exception_message": str(exc),
                    "exception_type": type(exc).__name__, "traceback": traceback.format_tb(exc.__traceback__),
                    "linked_node": value}}], source)
            return False
        return None if ok else False

    @staticmethod
    def _check_value(inputs: dict[str, Any], name: str, value: Any, input_type: Any, extra: dict[str, Any],
                     info: list[Any]) -> dict[str, Any] | None:
        converters = {"INT": int, "FLOAT": float, "STRING": str, "BOOLEAN": bool}
        if isinstance(input_type, str) and input_type in converters:
            try:
                value = converters[input_type](value)
                inputs[name] = value  # history stores the converted value, as the real server does
            except Exception as exc:
                return {"type": "invalid_input_type",
                        "message": f"Failed to convert an input value to a {input_type} value",
                        "details": f"{name}, {value}, {exc}",
                        "extra_info": {"input_name": name, "input_config": info, "received_value": value,
                                       "exception_message": str(exc)}}
        if "min" in extra and value < extra["min"]:
            return {"type": "value_smaller_than_min", "message": f"Value {value} smaller than min of {extra['min']}",
                    "details": name, "extra_info": {"input_name": name, "input_config": info,
                                                    "received_value": value}}
        if "max" in extra and value > extra["max"]:
            return {"type": "value_bigger_than_max", "message": f"Value {value} bigger than max of {extra['max']}",
                    "details": name, "extra_info": {"input_name": name, "input_config": info,
                                                    "received_value": value}}
        options = input_type if isinstance(input_type, list) else (
            extra.get("options", []) if input_type == "COMBO" else None)
        if options is not None and value not in options:
            listed, config = (f"(list of length {len(options)})", None) if len(options) > 20 else (str(options), info)
            return {"type": "value_not_in_list", "message": "Value not in list",
                    "details": f"{name}: '{value}' not in {listed}",
                    "extra_info": {"input_name": name, "input_config": config, "received_value": value}}
        return None
