"""Bazel rules for Sematic pipelines.

sematic_pipeline(name, deps, registry, repository, base, bases, env, data) defines:
- NAME: `bazel run //pkg:NAME -- ARGS` packages the target's runfiles (NAME.py and what
  `deps` and `data` bring) into one image per base with Sematic's own builder (no Docker
  daemon, no rules_docker), pushes what changed, then runs NAME.py with the image map, so
  that CloudResolver and base_image_tag pick the right images;
- NAME_local: runs NAME.py with no packaging (a CloudResolver there fails: no image).

Bases are image references (REGISTRY/REPOSITORY:TAG or @DIGEST), pulled from their
registry by the builder: there is nothing for Bazel to fetch.
"""

def base_images():
    """For the WORKSPACE, as in Sematic's set-up: nothing to download (bases are pulled
    from their registries when an image is built)."""
    pass

def _label(name):
    return "//%s:%s" % (native.package_name(), name)

def _bases(name, base, bases):
    merged = dict(bases or {})
    if base != None:
        if "default" in merged and merged["default"] != base:
            fail(("sematic_pipeline %s: base = %r and bases[\"default\"] = %r name different " +
                  "images; give the default base once (base, or bases[\"default\"])") %
                 (_label(name), base, merged["default"]))
        merged["default"] = base
    if "default" not in merged:
        fail(("sematic_pipeline %s: no default base image; set base = \"...\" or " +
              "bases = {\"default\": \"...\", ...}") % _label(name))
    for tag, image in merged.items():
        if type(image) != "string" or not image:
            fail("sematic_pipeline %s: bases[%r] must be an image reference, got %r" %
                 (_label(name), tag, image))
    return merged

def _toml_string(value):
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'

def _toml_list(values):
    return "[" + ", ".join([_toml_string(v) for v in values]) + "]"

def _is_loopback(registry):
    host = registry.split(":")[0]
    return host == "localhost" or host.startswith("127.")

def _settings(registry, repository, bases, env, distributions, insecure_registries, platforms):
    lines = [
        "registry = " + _toml_string(registry),
        "repository = " + _toml_string(repository),
        "insecure_registries = " + _toml_list(insecure_registries),
    ]
    if distributions != None:
        lines.append("distributions = " + _toml_list(distributions))
    if platforms != None:
        lines.append("platforms = " + _toml_list(platforms))
    lines.append("[bases]")
    lines.extend(["%s = %s" % (_toml_string(t), _toml_string(i)) for t, i in sorted(bases.items())])
    lines.append("[env]")
    lines.extend(["%s = %s" % (_toml_string(k), _toml_string(v)) for k, v in sorted((env or {}).items())])
    return "\n".join(lines) + "\n"

def _write(name, out, content):
    native.genrule(
        name = name,
        outs = [out],
        cmd = "cat > $@ <<'SEMATIC_EOF'\n" + content.replace("$", "$$") + "SEMATIC_EOF",
    )

def sematic_pipeline(
        name,
        deps,
        registry,
        repository,
        base = None,
        bases = None,
        env = None,
        data = None,
        distributions = [],
        insecure_registries = None,
        platforms = None,
        check = False,
        **kwargs):
    """NAME and NAME_local for the entry point NAME.py.

    Args:
      name: the target; its entry point is NAME.py in this package.
      deps: py_library targets the entry point needs.
      registry: host[:port] the images are pushed to.
      repository: the repository in that registry.
      base: the default base image (a reference).
      bases: {tag: base image}; "default" doubles as base (both given must agree).
      env: environment variables set in the images.
      data: more files for the runfiles (and so the images).
      distributions: third-party distributions of this environment to put in the images
        (besides Sematic's own requirements); None: every installed one.
      insecure_registries: registries reached over plain HTTP (default: the registry when
        it is a loopback address, as Docker does).
      platforms: the platforms images are built for (default ["linux/amd64"]); several
        give an image index.
      check: run each image's worker self-check under runc after building (as
        `sematic build --check`); a failing check stops the run.
      **kwargs: passed to both py_binary targets (e.g. visibility, tags).
    """
    all_bases = _bases(name, base, bases)
    if insecure_registries == None:
        insecure_registries = [registry] if _is_loopback(registry) else []
    entry = name + ".py"
    settings = name + ".sematic.toml"
    launcher = name + "_launch.py"
    _write(name + "_settings", settings, _settings(
        registry,
        repository,
        all_bases,
        env,
        distributions,
        insecure_registries,
        platforms,
    ))
    _write(name + "_launcher", launcher, "\n".join([
        "# Generated by sematic_pipeline(name = %r): package, push, run %s." % (name, entry),
        "import sys",
        "from sematic.cli.bazel import launch",
        "sys.exit(launch(__file__, script=%r, package=%r, settings=%r, check=%r))" % (
            entry,
            native.package_name(),
            settings,
            bool(check),
        ),
        "",
    ]))
    native.py_binary(
        name = name,
        srcs = [launcher, entry],
        main = launcher,
        deps = deps,
        data = [":" + settings] + (data or []),
        python_version = "PY3",
        **kwargs
    )
    native.py_binary(
        name = name + "_local",
        srcs = [entry],
        main = entry,
        deps = deps,
        data = data or [],
        python_version = "PY3",
        **kwargs
    )
