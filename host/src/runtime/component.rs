//! Checking a guest component against the `engine-backend` world before anything runs it, so
//! that a user's component that does not fit is refused at construction with every mismatch
//! named (wasmtime's own type check stops at the first).
//!
//! A guest must export every family interface of the world (`flowfabric:backend/scheduling`,
//! `lease-holder`, `recovery`, `reads`, `suspension`, all `@0.1.0`) with every function, each with
//! the world's signature, and may import only `flowfabric:backend/sql@0.1.0`,
//! `flowfabric:backend/waitpoint-tokens@0.1.0` (the host's token signer), the types-only
//! `flowfabric:backend/types@0.1.0` that the families `use`, and the WASI interfaces Rust's
//! standard library uses (`wasi:io`, `wasi:cli`, `wasi:clocks`, `wasi:random`). Filesystem and
//! socket interfaces, or anything else, are refused. The reference for signatures is the
//! built-in guest, compiled from the same WIT.

use wasmtime::component::Component;
use wasmtime::component::types::{ComponentFunc, ComponentInstance, ComponentItem};

use std::sync::OnceLock;

use super::compiled_cache::{CompiledCache, ComponentSource};
use super::shared_engine::shared_engine;
use super::store::host_linker;
use crate::error::{GuestMismatch, OpenError};

/// The interfaces a guest exports: one per operation family.
const FAMILY_INTERFACES: [&str; 12] = [
    "flowfabric:backend/scheduling@0.1.0",
    "flowfabric:backend/lease-holder@0.1.0",
    "flowfabric:backend/recovery@0.1.0",
    "flowfabric:backend/reads@0.1.0",
    "flowfabric:backend/budgets@0.1.0",
    "flowfabric:backend/routing@0.1.0",
    "flowfabric:backend/workers@0.1.0",
    "flowfabric:backend/tags@0.1.0",
    "flowfabric:backend/operator@0.1.0",
    "flowfabric:backend/suspension@0.1.0",
    "flowfabric:backend/streams@0.1.0",
    "flowfabric:backend/flows@0.1.0",
];
/// The interface the host provides.
const SQL_INTERFACE: &str = "flowfabric:backend/sql@0.1.0";
/// The interface that signs and verifies waitpoint tokens (the host holds the secrets).
const TOKENS_INTERFACE: &str = "flowfabric:backend/waitpoint-tokens@0.1.0";
/// The functions of the `waitpoint-tokens` interface.
const TOKENS_FUNCTIONS: &[&str] = &["sign", "verify"];
/// The interface of shared types: no functions, imported by any guest whose exports use it.
const TYPES_INTERFACE: &str = "flowfabric:backend/types@0.1.0";
/// The functions of the `sql` interface. The built-in guest, which serves as the reference for
/// signatures, imports only those it calls; a guest importing another one is checked by
/// wasmtime's own type check when it is linked.
const SQL_FUNCTIONS: &[&str] = &["execute", "query", "execute-packed", "query-packed"];
/// Import prefixes of the WASI interfaces a guest may use.
const ALLOWED_WASI: &[&str] = &["wasi:io/", "wasi:cli/", "wasi:clocks/", "wasi:random/"];

/// The WIT package of the `engine-backend` world a guest implements, file by file
/// (`(file name, contents)`, `world.wit` first, then by name): save them in one directory to
/// build a guest against them.
pub const GUEST_WIT: &[(&str, &str)] = include!(concat!(env!("OUT_DIR"), "/guest_wit.rs"));

/// The built-in guest component (a `wasm32-wasip2` component of the `engine-backend` world,
/// built from `guest/` by `build.rs`), the one a [`SqliteBackend`](crate::SqliteBackend) runs
/// unless its builder names another: to check, precompile or compose it outside the backend.
pub const BUILTIN_GUEST_COMPONENT: &[u8] = include_bytes!(env!("FF_GUEST_WASM"));

/// The built-in guest and its SHA-256, computed by the build script: finding its compiled-cache
/// entry reads nothing of the component.
const BUILTIN_SOURCE: ComponentSource<'static> = ComponentSource {
    bytes: BUILTIN_GUEST_COMPONENT,
    digest: include!(concat!(env!("OUT_DIR"), "/guest_digest.rs")),
};

/// The built-in guest, compiled (or loaded from `cache`) once per process.
pub(crate) fn builtin_component(
    cache: Option<&CompiledCache>,
) -> Result<&'static Component, String> {
    static BUILTIN: OnceLock<Result<Component, String>> = OnceLock::new();
    BUILTIN
        .get_or_init(|| compile_source(BUILTIN_SOURCE, cache).map_err(|error| error.to_string()))
        .as_ref()
        .map_err(Clone::clone)
}

/// Compile a component binary with the process's engine, or load it from `cache`.
pub(crate) fn compile(bytes: &[u8], cache: Option<&CompiledCache>) -> Result<Component, OpenError> {
    compile_source(ComponentSource::new(bytes), cache)
}

fn compile_source(
    source: ComponentSource<'_>,
    cache: Option<&CompiledCache>,
) -> Result<Component, OpenError> {
    let engine = shared_engine();
    let compiled = match cache {
        Some(cache) => cache.component(engine, source).map(|(component, origin)| {
            tracing::debug!(cache = %cache.dir().display(), ?origin, "guest component ready");
            component
        }),
        None => Component::new(engine, source.bytes),
    };
    compiled
        .map_err(|error| OpenError::Guest(format!("not a valid WebAssembly component: {error:#}")))
}

/// Check `bytes` against the `engine-backend` world without running anything: `Ok` if a
/// backend would accept it, else the reason (a compile error, or every mismatch).
pub fn check_guest_component(bytes: &[u8]) -> Result<(), OpenError> {
    let component = compile(bytes, None)?;
    check(&component, CompiledCache::default_location().as_ref()).map_err(OpenError::GuestMismatch)
}

/// Compile and check a guest component ahead of time for this build's engine configuration,
/// returning the artifact [`SqliteBackendBuilder::guest_precompiled_file`] loads.
///
/// [`SqliteBackendBuilder::guest_precompiled_file`]: crate::SqliteBackendBuilder::guest_precompiled_file
pub fn precompile_guest_component(bytes: &[u8]) -> Result<Vec<u8>, OpenError> {
    check_guest_component(bytes)?;
    shared_engine()
        .precompile_component(bytes)
        .map_err(|error| OpenError::Guest(format!("cannot precompile the component: {error:#}")))
}

/// Load an artifact made by [`precompile_guest_component`]. wasmtime refuses artifacts from
/// another wasmtime version or engine configuration, and anything that is not one.
pub(crate) fn load_precompiled(artifact: &[u8]) -> Result<Component, OpenError> {
    if wasmtime::Engine::detect_precompiled(artifact) != Some(wasmtime::Precompiled::Component) {
        return Err(OpenError::Guest(
            "not a precompiled component artifact".into(),
        ));
    }
    // SAFETY: `Component::deserialize` trusts the artifact's machine code. The artifact must come
    // from `precompile_guest_component` (the caller vouches for the file; the header, the
    // wasmtime version and the engine configuration are checked by wasmtime).
    unsafe { Component::deserialize(shared_engine(), artifact) }.map_err(|error| {
        OpenError::Guest(format!("cannot load the precompiled component: {error:#}"))
    })
}

/// Every way `component` does not fit the world (the reference, the built-in guest, is loaded
/// through `cache`).
pub(crate) fn check(
    component: &Component,
    cache: Option<&CompiledCache>,
) -> Result<(), GuestMismatch> {
    let engine = shared_engine();
    let reference = builtin_component(cache)
        .map_err(|error| GuestMismatch {
            problems: vec![error],
        })?
        .component_type();
    let actual = component.component_type();
    let mut problems = Vec::new();

    for (name, item) in actual.imports(engine) {
        if name == SQL_INTERFACE {
            let expected = reference.get_import(engine, SQL_INTERFACE).map(|e| e.ty);
            if let (
                ComponentItem::ComponentInstance(actual),
                Some(ComponentItem::ComponentInstance(expected)),
            ) = (&item.ty, expected)
            {
                compare_functions(
                    &format!("import `{SQL_INTERFACE}`"),
                    &expected,
                    actual,
                    Expect::Subset(SQL_FUNCTIONS),
                    &mut problems,
                );
            }
        } else if name == TOKENS_INTERFACE {
            let expected = reference.get_import(engine, TOKENS_INTERFACE).map(|e| e.ty);
            if let (
                ComponentItem::ComponentInstance(actual),
                Some(ComponentItem::ComponentInstance(expected)),
            ) = (&item.ty, expected)
            {
                compare_functions(
                    &format!("import `{TOKENS_INTERFACE}`"),
                    &expected,
                    actual,
                    Expect::Subset(TOKENS_FUNCTIONS),
                    &mut problems,
                );
            }
        } else if name == TYPES_INTERFACE {
            // Types only: wasmtime's link below checks that its types are the world's, and any
            // function in it is not part of the world.
            if let ComponentItem::ComponentInstance(actual) = &item.ty {
                for (function, item) in actual.exports(engine) {
                    if matches!(item.ty, ComponentItem::ComponentFunc(_)) {
                        problems.push(format!(
                            "import `{TYPES_INTERFACE}`: function `{function}` is not part of the world"
                        ));
                    }
                }
            }
        } else if !ALLOWED_WASI.iter().any(|prefix| name.starts_with(prefix)) {
            problems.push(format!(
                "imports `{name}`, which the host does not provide (allowed: `{SQL_INTERFACE}`, `{TOKENS_INTERFACE}`, `{TYPES_INTERFACE}`, wasi:io, wasi:cli, wasi:clocks, wasi:random)"
            ));
        }
    }

    for interface in FAMILY_INTERFACES {
        let expected = match reference.get_export(engine, interface).map(|e| e.ty) {
            Some(ComponentItem::ComponentInstance(instance)) => instance,
            _ => unreachable!("the built-in guest exports every family interface"),
        };
        match actual.get_export(engine, interface).map(|e| e.ty) {
            None => problems.push(format!("does not export `{interface}`")),
            Some(ComponentItem::ComponentInstance(instance)) => compare_functions(
                &format!("export `{interface}`"),
                &expected,
                &instance,
                Expect::All,
                &mut problems,
            ),
            Some(_) => problems.push(format!(
                "exports `{interface}`, but not as an interface instance"
            )),
        }
    }

    // The built-in guest imports only the `sql` functions it uses, so the comparison above
    // cannot judge the others; linking against the host's own definitions judges every import
    // (wasmtime names the first that does not fit).
    if let Err(error) = host_linker().and_then(|linker| linker.instantiate_pre(component)) {
        problems.push(format!("does not link with the host: {error:#}"));
    }

    if problems.is_empty() {
        Ok(())
    } else {
        Err(GuestMismatch { problems })
    }
}

/// Which functions an instance must have.
enum Expect {
    /// Every function of the reference (an export).
    All,
    /// Any of these (an import); those the reference lacks are not compared.
    Subset(&'static [&'static str]),
}

/// Compare the functions of `actual` with those of `expected` (see [`Expect`]).
fn compare_functions(
    what: &str,
    expected: &ComponentInstance,
    actual: &ComponentInstance,
    expect: Expect,
    problems: &mut Vec<String>,
) {
    let engine = shared_engine();
    for (name, item) in actual.exports(engine) {
        let ComponentItem::ComponentFunc(actual_func) = item.ty else {
            continue;
        };
        match expected.get_export(engine, name).map(|e| e.ty) {
            Some(ComponentItem::ComponentFunc(expected_func)) => {
                if !same_signature(&expected_func, &actual_func) {
                    problems.push(format!(
                        "{what}: function `{name}` has a different signature than the world's"
                    ));
                }
            }
            _ if matches!(expect, Expect::Subset(known) if known.contains(&name)) => {}
            _ => problems.push(format!(
                "{what}: function `{name}` is not part of the world"
            )),
        }
    }
    if matches!(expect, Expect::All) {
        for (name, item) in expected.exports(engine) {
            if matches!(item.ty, ComponentItem::ComponentFunc(_))
                && actual.get_export(engine, name).is_none()
            {
                problems.push(format!("{what}: function `{name}` is missing"));
            }
        }
    }
}

/// Same parameter and result types, in order (parameter names may differ).
fn same_signature(expected: &ComponentFunc, actual: &ComponentFunc) -> bool {
    expected
        .params()
        .map(|(_, ty)| ty)
        .eq(actual.params().map(|(_, ty)| ty))
        && expected.results().eq(actual.results())
        && expected.async_() == actual.async_()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_known_sql_functions_are_those_of_the_wit() {
        let sql = include_str!("../../../wit/sql.wit");
        let declared: Vec<&str> = sql
            .lines()
            .filter_map(|line| line.trim().split_once(": func("))
            .map(|(name, _)| name)
            .collect();
        assert_eq!(declared, SQL_FUNCTIONS);
    }

    #[test]
    fn guest_wit_holds_every_file_of_the_package_and_every_family_is_checked() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../wit");
        let mut on_disk: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.ends_with(".wit"))
            .collect();
        on_disk.sort();
        let mut listed: Vec<String> = GUEST_WIT.iter().map(|(name, _)| name.to_string()).collect();
        listed.sort();
        assert_eq!(listed, on_disk);
        let world = include_str!("../../../wit/world.wit");
        let exported: Vec<String> = world
            .lines()
            .filter_map(|line| line.trim().strip_prefix("export "))
            .map(|name| format!("flowfabric:backend/{}@0.1.0", name.trim_end_matches(';')))
            .collect();
        assert_eq!(exported, FAMILY_INTERFACES);
    }

    #[test]
    fn the_known_token_functions_are_those_of_the_wit() {
        let tokens = include_str!("../../../wit/waitpoint-tokens.wit");
        let declared: Vec<&str> = tokens
            .lines()
            .filter_map(|line| line.trim().split_once(": func("))
            .map(|(name, _)| name)
            .collect();
        assert_eq!(declared, TOKENS_FUNCTIONS);
    }
}
