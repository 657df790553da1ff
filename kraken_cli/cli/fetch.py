"""`kraken fetch`: download released Krakencoder files into the cache folder, or list them."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Annotated, Optional

import typer
from rich.filesize import decimal
from rich.markup import escape
from rich.table import Table

from . import _complete
from ._common import ReportStyle, with_report_style
from ._console import err, out, print_json
from ._errors import reporting_errors
from ._options import CacheDirOpt
from ._progress import make_progress

if TYPE_CHECKING:
    from kraken_cli.engine.registry import CacheStatus, FetchedFile, VerifyStatus

NamesArg = Annotated[
    Optional[list[str]],
    typer.Argument(metavar="NAME", show_default=False, autocompletion=_complete.complete_registry_name,
                   help="Released files to download (see --list). Default: the published 15-flavor model "
                        "and its three PCA transforms."),
]
AllOpt = Annotated[bool, typer.Option("--all", help="Download every released file.")]
ListOpt = Annotated[bool, typer.Option("--list", help="List the released files (or the NAMEs / --flavors ones) "
                                                      "and which are cached; download nothing. With -q: names only.")]
FlavorsOpt = Annotated[
    Optional[list[str]],
    typer.Option("--flavors", metavar="FLAVOR[,FLAVOR...]", autocompletion=_complete.complete_flavor_list,
                 help="Also get the checkpoint and transform of these flavors (repeatable, or comma-separated)."),
]
ForceOpt = Annotated[bool, typer.Option("--force", help="Download again even when a verified copy is cached.")]
VerifyOpt = Annotated[bool, typer.Option(
    "--verify", help="Rehash the cached files (every cached one, or the NAMEs / --flavors / --all ones) against "
                     "their published sha256 and report ok, mismatch or missing; download and delete nothing. "
                     "Exit status 1 when any file mismatches.")]
MirrorOpt = Annotated[
    Optional[list[str]],
    typer.Option("--mirror", metavar="URL", help="Base URL tried first, as URL/NAME (repeatable), "
                                                 "e.g. a lab server holding a copy of the files."),
]


@with_report_style
def fetch_command(
    names: NamesArg = None,
    all_files: AllOpt = False,
    list_only: ListOpt = False,
    flavors: FlavorsOpt = None,
    force: ForceOpt = False,
    verify: VerifyOpt = False,
    cache_dir: CacheDirOpt = None,
    mirror: MirrorOpt = None,
    *,
    style: ReportStyle,
) -> None:
    """Download released model files (checkpoints, transforms) into the cache folder.

    Each file is checked against its published sha256 before it is used; an interrupted download
    resumes where it stopped. The paths of the files are printed on stdout.

    Examples:

        kraken fetch                                  [dim]# the published model + 3 PCA transforms[/]
        kraken fetch --list                           [dim]# what can be fetched, and what is cached[/]
        kraken fetch --flavors SCifod2act_fs86_sift2  [dim]# a flavor's checkpoint and transform[/]
        kraken fetch --verify                         [dim]# rehash every cached file[/]
        kraken fetch --all --cache-dir /data/kraken
        kraken fetch --mirror https://lab.example.org/kraken
    """
    flavor_list = [f.strip() for item in flavors or [] for f in item.split(",") if f.strip()]
    if all_files and (names or flavor_list):
        raise typer.BadParameter("give either --all or NAME.../--flavors, not both", param_hint="--all")
    if verify and (list_only or force or mirror):
        raise typer.BadParameter("--verify downloads nothing: give it without --list, --force or --mirror",
                                 param_hint="--verify")
    from kraken_cli.engine import registry

    with reporting_errors(as_json=style.as_json):
        cache = registry.default_cache_dir(cache_dir, os.environ)
        if list_only:
            statuses = registry.list_files(cache, names or [], flavors=flavor_list)
            _render_list(statuses, cache, style)
            return
        if verify:
            checked = registry.verify_cached(cache, names or [], all_files=all_files, flavors=flavor_list)
    if verify:
        _render_verified(checked, cache, style)
        if any(v.status == "mismatch" for v in checked):
            raise typer.Exit(1)
        return
    with reporting_errors(as_json=style.as_json):
        progress = make_progress(style.quiet, style.as_json, in_bytes=True)
        fetched = registry.fetch(names or [], cache_dir=cache, all_files=all_files, flavors=flavor_list,
                                 mirrors_first=mirror or [], force=force, progress=progress)
    _render_fetched(fetched, cache, style)


def _render_list(statuses: list[CacheStatus], cache: os.PathLike[str], style: ReportStyle) -> None:
    if style.as_json:
        print_json({"cache_dir": str(cache), "files": [s.to_dict() for s in statuses]})
        return
    if style.quiet:  # no table: one name per line, for scripts
        out.file.write("".join(f"{s.entry.name}\n" for s in statuses))
        out.file.flush()
        return
    table = Table(title=f"Released files (cache: {escape(str(cache))})", title_justify="left", header_style="bold")
    table.add_column("name", overflow="fold")
    table.add_column("kind")
    table.add_column("size", justify="right")
    table.add_column("cached", justify="center")
    for s in statuses:
        table.add_row(escape(s.entry.name), s.entry.kind, "?" if s.size is None else decimal(s.size),
                      "[green]✓[/]" if s.cached else "–")
    out.print(table)
    n = sum(s.cached for s in statuses)
    err.print(f"[dim]{n} of {len(statuses)} cached; `kraken fetch NAME` downloads one.[/]")


def _render_verified(checked: list[VerifyStatus], cache: os.PathLike[str], style: ReportStyle) -> None:
    if style.as_json:
        print_json([v.to_dict() for v in checked])
        return
    counts = {k: sum(v.status == k for v in checked) for k in ("ok", "mismatch", "missing")}
    if style.quiet:  # only what needs attention
        for v in checked:
            if v.status == "mismatch":
                err.print(f"mismatch: {escape(str(v.path))}")
        return
    table = Table(title=f"Verified files (cache: {escape(str(cache))})", title_justify="left", header_style="bold")
    table.add_column("name", overflow="fold")
    table.add_column("kind")
    table.add_column("status", justify="center")
    shown = {"ok": "[green]ok[/]", "mismatch": "[red]mismatch[/]", "missing": "[dim]missing[/]"}
    for v in checked:
        table.add_row(escape(v.entry.name), v.entry.kind, shown[v.status])
    out.print(table)
    err.print(f"[dim]{counts['ok']} ok, {counts['mismatch']} mismatch, {counts['missing']} missing"
              + ("; `kraken fetch --force NAME` downloads a mismatched file again.[/]" if counts["mismatch"] else ".[/]"))


def _render_fetched(fetched: list[FetchedFile], cache: os.PathLike[str], style: ReportStyle) -> None:
    if style.as_json:
        print_json({"cache_dir": str(cache), "files": [f.to_dict() for f in fetched]})
        return
    for f in fetched:
        out.file.write(f"{f.path}\n")
    out.file.flush()
    if not style.quiet:
        n_new = sum(f.downloaded for f in fetched)
        err.print(f"[green]✓[/] {n_new} downloaded, {len(fetched) - n_new} already cached and verified, "
                  f"in {escape(str(cache))}")

