"""Image commands: import (a root filesystem tar), images, rmi, tag.

cove has no registry client: images come from ``cove import``, which streams a tar
to ``POST /images/create?fromSrc=-`` exactly as ``docker import`` does.
"""

from __future__ import annotations

import os
import time
from typing import Any

import click

from cove.cli.main import client


def split_reference(ref: str) -> tuple[str, str]:
    """``"repo:tag"`` -> ``("repo", "tag")``; a ``:`` before the last ``/`` is a port."""
    ref = ref.partition("@")[0]
    repo, sep, tag = ref.rpartition(":")
    if not sep or "/" in tag:
        return ref, ""
    return repo, tag


@click.command("import")
@click.option("-m", "--message", default=None, help="Commit message for the imported image.")
@click.option("-c", "--change", "changes", multiple=True,
              help='Dockerfile instruction for the image (CMD, ENTRYPOINT, ENV, WORKDIR, EXPOSE), e.g. -c \'CMD ["sh"]\'.')
@click.option("--allow-devices", is_flag=True,
              help="Keep the tarball's device nodes (refused otherwise: a block device is a key to the host's disks).")
@click.argument("source", metavar="FILE|-")
@click.argument("reference", required=False, metavar="[REPOSITORY[:TAG]]")
@click.pass_context
def import_(ctx: click.Context, message: str | None, changes: tuple[str, ...], allow_devices: bool, source: str,
            reference: str | None) -> None:
    """Import the contents of a tarball to create a filesystem image."""
    from cove.cli.streams import binary_stream

    repo, tag = split_reference(reference or "")
    query = {"fromSrc": "-", "repo": repo, "tag": tag, "message": message, "changes": list(changes) or None,
             "allowDevices": "1" if allow_devices else None}
    headers = {"Content-Type": "application/x-tar"}
    if source == "-":
        body: Any = binary_stream("stdin")
        messages = _post_tar(ctx, query, body, headers)
    else:
        try:
            tar = open(source, "rb")
        except OSError as exc:
            raise click.FileError(source, exc.strerror) from None
        from cove.cli.progress import Progress, Reading

        with tar:
            size = os.fstat(tar.fileno()).st_size
            headers["Content-Length"] = str(size)
            bar = Progress(size, f"importing {os.path.basename(source)}", unit="bytes")
            try:
                messages = _post_tar(ctx, query, Reading(tar, bar), headers)
            finally:
                bar.close()
    for item in messages:
        if not isinstance(item, dict):
            continue
        error = item.get("error") or (item.get("errorDetail") or {}).get("message")
        if error:
            click.echo(error, err=True)
            ctx.exit(1)
        status = item.get("status") or item.get("Id")
        if status and not item.get("progress"):
            click.echo(status)


def _post_tar(ctx: click.Context, query: dict[str, Any], body: Any,
              headers: dict[str, str]) -> list[Any]:
    """POST the tar and decode the answer: one JSON value or a stream of them."""
    import json

    with client(ctx).request("POST", "/images/create", query=query, body=body,
                             headers=headers) as resp:
        text = resp.read().decode("utf-8", "replace")
    decoder = json.JSONDecoder()
    items: list[Any] = []
    index = 0
    while True:
        while index < len(text) and text[index].isspace():
            index += 1
        if index >= len(text):
            return items
        try:
            item, index = decoder.raw_decode(text, index)
        except ValueError:
            return items + [{"status": text[index:].strip()}]
        items.append(item)


@click.command("images")
@click.option("-a", "--all", "all_", is_flag=True, help="Show all images.")
@click.option("-q", "--quiet", is_flag=True, help="Only show image IDs.")
@click.option("--no-trunc", is_flag=True, help="Do not truncate the output.")
@click.option("-f", "--filter", "filters", multiple=True, metavar="KEY=VALUE",
              help="Filter output.")
@click.option("--format", "template", default=None, help="Format the output using a Go template ('table ...' for columns).")
@click.argument("repository", required=False)
@click.pass_context
def images(ctx: click.Context, all_: bool, quiet: bool, no_trunc: bool,
           filters: tuple[str, ...], template: str | None, repository: str | None) -> None:
    """List images (those matching REPOSITORY[:TAG] if given)."""
    from cove.cli.format import ago, human_size, short_id, table
    from cove.cli.networks import filters_query

    query: dict[str, Any] = {"all": all_ or None}
    query.update(filters_query(filters + ((f"reference={repository}",) if repository else ())))
    listing = client(ctx).get("/images/json", query) or []
    if quiet:
        seen: set[str] = set()
        for image in listing:
            ident = short_id(image.get("Id", ""), not no_trunc)
            if ident not in seen:
                seen.add(ident)
                click.echo(ident)
        return
    now = time.time()
    rows = []
    for image in listing:
        ident = short_id(image.get("Id", ""), not no_trunc)
        created = ago(image["Created"], now) if image.get("Created") else "N/A"
        size = human_size(image.get("Size") or 0)
        for ref in image.get("RepoTags") or ["<none>:<none>"]:
            repo, tag = split_reference(ref)
            rows.append([repo or "<none>", tag or "<none>", ident, created, size])
    if template:
        from cove.cli.format import format_rows

        keys = ["Repository", "Tag", "ID", "CreatedSince", "Size"]
        headers = dict(zip(keys, ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"]))
        click.echo(format_rows(template, [dict(zip(keys, r)) for r in rows], headers))
        return
    click.echo(table(["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"], rows))


@click.command("rmi")
@click.option("-f", "--force", is_flag=True, help="Force removal of the image.")
@click.argument("names", nargs=-1, required=True)
@click.pass_context
def rmi(ctx: click.Context, force: bool, names: tuple[str, ...]) -> None:
    """Remove one or more images."""
    from cove.cli.client import APIError, segment

    api = client(ctx)
    failed = False
    for name in names:
        try:
            reply = api.delete(f"/images/{segment(name)}", {"force": force or None}) or []
        except APIError as exc:
            click.echo(f"Error response from daemon: {exc.message}", err=True)
            failed = True
            continue
        for item in reply if isinstance(reply, list) else [reply]:
            for key in ("Untagged", "Deleted"):
                if isinstance(item, dict) and item.get(key):
                    click.echo(f"{key}: {item[key]}")
    ctx.exit(1 if failed else 0)


@click.command("tag")
@click.argument("source", metavar="SOURCE_IMAGE[:TAG]")
@click.argument("target", metavar="TARGET_IMAGE[:TAG]")
@click.pass_context
def tag(ctx: click.Context, source: str, target: str) -> None:
    """Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE."""
    from cove.cli.client import segment

    repo, tag_ = split_reference(target)
    client(ctx).post(f"/images/{segment(source)}/tag", query={"repo": repo, "tag": tag_})
