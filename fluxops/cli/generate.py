"""`fluxops generate`: run the production workflow through ComfyUI's API, and `--check`, the health check."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from fluxops.cli.app import app, build_settings, guarded
from fluxops.cli.options import (
    ClusterOpt,
    ComfyArgOpt,
    ComfyDirOpt,
    ComfyPythonOpt,
    JsonOpt,
    ManifestOpt,
    RayAddressOpt,
    host_option,
    port_option,
)
from fluxops.console import Output
from fluxops.errors import ExitCode, FluxopsError

if TYPE_CHECKING:
    from collections.abc import Callable

    from fluxops.generate.run import Outcome
    from fluxops.generate.runresult import Event, RunResult
    from fluxops.generate.workflow import Overrides
    from fluxops.settings import Settings

_PANEL = "Workflow parameters"
_SERVER = "Server"
_CLUSTER = "Cluster"


@app.command()
def generate(
    ctx: typer.Context,
    prompt: Annotated[str | None, typer.Option("--prompt", "-p", help="The positive prompt (default: the "
                                               "workflow's photography prompt).", rich_help_panel=_PANEL)] = None,
    negative: Annotated[str | None, typer.Option(help="The negative prompt (default: the workflow's).",
                                                 rich_help_panel=_PANEL)] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of the first image (default: random, printed); "
                                             "--count N uses seed, seed+1, ...", rich_help_panel=_PANEL)] = None,
    preset: Annotated[str, typer.Option(help="fast (8 steps, CFG 1.5, LoRA 0.8), production (10, 2.0, 0.75), "
                                        "quality (12, 2.5, 0.7) or premium (15, 3.0, 0.6).",
                                        rich_help_panel=_PANEL)] = "production",
    steps: Annotated[int | None, typer.Option(help="Sampler steps (overrides the preset).",
                                              rich_help_panel=_PANEL)] = None,
    cfg: Annotated[float | None, typer.Option(help="CFG scale (overrides the preset).",
                                              rich_help_panel=_PANEL)] = None,
    sampler: Annotated[str | None, typer.Option(help="Sampler name, e.g. euler.", rich_help_panel=_PANEL)] = None,
    scheduler: Annotated[str | None, typer.Option(help="Scheduler, e.g. simple.", rich_help_panel=_PANEL)] = None,
    lora_strength: Annotated[float | None, typer.Option(help="Turbo LoRA strength, model and CLIP (overrides the "
                                                        "preset).", rich_help_panel=_PANEL)] = None,
    width: Annotated[int | None, typer.Option(help="Image width in pixels (multiples of 16 suit Flux).",
                                              rich_help_panel=_PANEL)] = None,
    height: Annotated[int | None, typer.Option(help="Image height in pixels.", rich_help_panel=_PANEL)] = None,
    batch: Annotated[int | None, typer.Option(help="Images per prompt (one latent batch).",
                                              rich_help_panel=_PANEL)] = None,
    count: Annotated[int, typer.Option(min=1, help="Prompts to queue at once, each with its own seed.")] = 1,
    yes: Annotated[bool, typer.Option("--yes", help="Run even when --count/--batch add up to more than a day "
                                      "of work.")] = False,
    output: Annotated[Path | None, typer.Option("--output", "-o", file_okay=False, help="Folder for images and "
                                                "their JSON sidecars (default ./outputs; env FLUXOPS_OUTPUT_DIR).")
                      ] = None,
    workflow: Annotated[Path | None, typer.Option(dir_okay=False, help="An API-format workflow with the same "
                                                  "node titles (default: the packaged production workflow).")
                        ] = None,
    check: Annotated[bool, typer.Option("--check", help="Health check: production preset, fixed seed and prompt; "
                                        "asserts the image size and that it is not blank.")] = False,
    url: Annotated[str | None, typer.Option(help="ComfyUI's address, e.g. http://gpu-box:8188 (instead of "
                                            "--host/--port).", rich_help_panel=_SERVER)] = None,
    host: Annotated[str | None, host_option(_SERVER)] = None,
    port: Annotated[int | None, port_option(_SERVER)] = None,
    stop_after: Annotated[bool, typer.Option("--stop-after", help="Stop the ComfyUI server afterwards if this "
                                             "command started it.", rich_help_panel=_SERVER)] = False,
    comfyui_dir: ComfyDirOpt = None,
    comfyui_python: ComfyPythonOpt = None,
    comfy_arg: ComfyArgOpt = None,
    manifest: ManifestOpt = None,
    cluster: ClusterOpt = False,
    ray_address: RayAddressOpt = None,
    prompts: Annotated[Path | None, typer.Option("--prompts", dir_okay=False, help="With --cluster: a file of "
                                                 "prompts, one per line (.txt; blank lines and # comments "
                                                 "skipped), or JSON objects with the options' names (.jsonl: "
                                                 '{"prompt": ..., "seed": ..., "steps": ...}); --count images '
                                                 "each.", rich_help_panel=_CLUSTER)] = None,
    max_retries: Annotated[int, typer.Option("--max-retries", min=0, help="With --cluster: times a job whose "
                                             "worker, ComfyUI or node was lost is run again elsewhere.",
                                             rich_help_panel=_CLUSTER)] = 2,
    start_timeout: Annotated[float, typer.Option("--start-timeout", min=1, help="With --cluster: seconds to wait "
                                                 "for a first worker to be placed on a GPU and its ComfyUI to "
                                                 "answer, before the run gives up.",
                                                 rich_help_panel=_CLUSTER)] = 600.0,
    json_out: JsonOpt = False,
) -> None:
    """Generate images with the production workflow (FLUX.1 Krea + Turbo LoRA) through ComfyUI's API."""
    out = Output("generate", json_mode=json_out)
    with guarded(out):
        from fluxops.generate.workflow import Overrides

        settings = build_settings(ctx, output_dir=output, host=host, port=port, comfyui_dir=comfyui_dir,
                                  comfyui_python=comfyui_python, manifest=manifest)
        overrides = Overrides(prompt=prompt, negative=negative, steps=steps, cfg=cfg, sampler=sampler,
                              scheduler=scheduler, lora_strength=lora_strength, width=width, height=height,
                              batch=batch)
        if cluster:
            from fluxops.cli.generate_cluster import ClusterArgs, refuse_single_box_options, run_cluster

            refuse_single_box_options(check, url, stop_after)
            run_cluster(out, settings, overrides, preset, seed, count, workflow,
                        ClusterArgs(ray_address, prompts, comfy_arg or [], max_retries, yes, start_timeout))
            return
        for given, name in ((prompts, "--prompts"), (comfy_arg, "--comfy-arg"), (ray_address, "--ray-address")):
            if given:
                raise FluxopsError("cluster.bad_option", f"{name} goes with --cluster")
        _run(out, settings, overrides, preset, seed, count, workflow, check, url, stop_after, yes)


def _run(out: Output, settings: Settings, overrides: Overrides, preset: str, seed: int | None, count: int,
         workflow: Path | None, check: bool, url: str | None, stop_after: bool, yes: bool) -> None:
    from fluxops.generate.plan import GenerateRequest, plan
    from fluxops.generate.run import execute
    from fluxops.generate.runresult import PartialRunError

    request = (GenerateRequest.health_check(overrides, workflow) if check else
               GenerateRequest(preset=preset, overrides=overrides, seed=seed, count=count, workflow=workflow,
                               yes=yes))
    the_plan = plan(request, settings.manifest)
    params = the_plan.jobs[0].params
    if params.width % 16 or params.height % 16:
        out.warn(f"{params.width}x{params.height}: Flux works on multiples of 16; ComfyUI pads other sizes")
    seeds = the_plan.seeds
    out.note(f"seed {seeds[0]}" + (f"..{seeds[-1]}" if len(seeds) > 1 else "")
             + f" (reproduce with --seed {seeds[0]})")
    try:
        with out.step_progress("connecting") as update:
            outcome = execute(settings, the_plan, url=url, stop_after=stop_after, on_event=_renderer(out, update),
                              on_note=out.note)
    except PartialRunError as exc:  # the images saved before the failure are reported with the error
        _print_saved_before_failure(out, exc.result)
        out.error(exc, data={"seeds": the_plan.seeds, **exc.result.to_dict()})
        raise typer.Exit(exc.exit_code) from None
    out.emit(outcome.to_dict(), ok=outcome.ok)
    if outcome.check is not None:
        _show_check(out, outcome)
        return
    _print_summary(out, outcome.result)


def _renderer(out: Output, update: Callable[..., None]) -> Callable[[Event], None]:
    from fluxops.generate.runresult import EventKind

    def on_event(event: Event) -> None:
        label = f"image {event.job + 1}/{event.jobs}" if event.jobs > 1 else "image"
        if event.kind is EventKind.STEP:
            update(description=f"{label}: {event.text} step {event.step}/{event.steps}", completed=event.step,
                   total=event.steps)
        elif event.kind is EventKind.NODE:
            update(description=f"{label}: {event.text}")
            out.event(f"{label}: {event.text}")
        elif event.kind in (EventKind.STARTED, EventKind.QUEUED):
            update(description=f"{label}: {event.kind.value}")
            out.event(f"{label}: {event.kind.value}")
        elif event.kind is EventKind.SAVED:
            out.event(f"{label}: saved {event.path}")
        elif event.kind is EventKind.FALLBACK:
            out.warn(event.text)
        elif event.kind in (EventKind.CANCELLED, EventKind.CACHED):
            out.note(f"{label}: {event.text}" if event.kind is EventKind.CACHED else event.text)
    return on_event


def _print_summary(out: Output, result: RunResult) -> None:
    for image in result.images:
        out.line(f"{image['path']}  (seed {image['seed']})" + ("  [from ComfyUI's cache]" if image.get("cached")
                                                              else ""))
    n, cached = len(result.images), result.cached
    figures = (f"{result.seconds_per_image} s/image, {result.images_per_minute} images/min" if result.generated
               else "no image was generated")
    from_cache = f" ({cached} from ComfyUI's cache, left out of the figures)" if cached else ""
    out.line(f"{n} image{'s' if n != 1 else ''} in {result.seconds:.1f} s: {figures}{from_cache}", style="green")


def _print_saved_before_failure(out: Output, result: RunResult) -> None:
    for image in result.images:
        out.line(f"{image['path']}  (seed {image['seed']})")
    n = len(result.images)
    if n:
        out.line(f"{n} image{'s' if n != 1 else ''} saved before the run failed", style="yellow")


def _show_check(out: Output, outcome: Outcome) -> None:
    verdict, result = outcome.check, outcome.result
    assert verdict is not None
    if verdict.passed:
        out.line(f"health check passed: {verdict.width}x{verdict.height}, pixel variance {verdict.variance:.1f} "
                 f"(floor {verdict.floor:g}), {result.seconds:.1f} s, {verdict.image}", style="green")
        return
    out.error(FluxopsError("generate.check_failed", "health check failed: " + "; ".join(verdict.failures)))
    raise typer.Exit(ExitCode.FAILURE)
