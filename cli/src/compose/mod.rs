//! `ffwasm guest compose`: the guest composed with the SQLite provider (and, for a command, the
//! driver) into one component that imports only `wasi:*` and runs under any component runtime.
//!
//! The graph, built with `wac-graph` (the library behind the `wac` tool):
//!
//! ```text
//! provider ──sql, types──▶ guest ──families──▶ atomic adapter ──families──▶ (exports)
//!    └─────transaction, types──────────────────────▲               └──▶ driver (--command)
//! ```
//!
//! Every import of a component is satisfied by whichever earlier component exports that name
//! (so a guest with new families, or a custom guest, needs no change here); what nothing
//! provides must be `wasi:*` and becomes an import of the composition.

mod adapter;

use anyhow::{Context, bail};
use wac_graph::types::{ItemKind, Package};
use wac_graph::{CompositionGraph, EncodeOptions, NodeId, PackageId};

/// The components to compose.
pub struct Parts<'a> {
    /// The engine guest (the built-in one or a custom one).
    pub guest: &'a [u8],
    /// The SQLite provider (`standalone/provider`).
    pub provider: &'a [u8],
    /// The command-line driver (`standalone/driver`), for a command component.
    pub driver: Option<&'a [u8]>,
}

/// Compose `parts` into one component: a library exporting the guest's families (each call one
/// transaction), or with a driver a `wasi:cli/run` command.
pub fn compose(parts: &Parts<'_>) -> anyhow::Result<Vec<u8>> {
    let adapter = adapter::generate(parts.guest)?;
    let mut graph = CompositionGraph::new();
    let provider = register(&mut graph, "flowfabric:provider", parts.provider)?;
    let guest = register(&mut graph, "flowfabric:guest", parts.guest)?;
    let adapter = register(&mut graph, "flowfabric:atomic-adapter", &adapter)?;
    let provider = graph.instantiate(provider);
    let guest = instantiate(&mut graph, guest, &[provider])?;
    let adapter = instantiate(&mut graph, adapter, &[guest, provider])?;
    let top = match parts.driver {
        None => adapter,
        Some(driver) => {
            let driver = register(&mut graph, "flowfabric:driver", driver)?;
            instantiate(&mut graph, driver, &[adapter, provider])?
        }
    };
    // The families' types come from the provider's types-only interfaces (`types`); a component
    // may export an instance whose types come from an inner instance only if that instance's
    // types are exported too (bytecodealliance/wac#141). Interfaces without functions give a
    // caller nothing to call, so exporting them is harmless.
    if parts.driver.is_none() {
        for name in types_only_exports(&graph, provider) {
            let node = graph.alias_instance_export(provider, &name)?;
            graph.export(node, &name)?;
        }
    }
    for name in instance_exports(&graph, top) {
        let node = graph.alias_instance_export(top, &name)?;
        graph.export(node, &name)?;
    }
    let bytes = graph
        .encode(EncodeOptions::default())
        .context("cannot encode the composition")?;
    let foreign: Vec<String> = imports(&bytes)?
        .into_iter()
        .filter(|name| !name.starts_with("wasi:"))
        .collect();
    if !foreign.is_empty() {
        bail!(
            "the composition would import {}, which no component provides",
            foreign.join(", ")
        );
    }
    Ok(bytes)
}

/// The names a component imports.
pub fn imports(component: &[u8]) -> anyhow::Result<Vec<String>> {
    let mut types = wac_graph::types::Types::default();
    let package =
        Package::from_bytes("flowfabric:inspected", None, component.to_vec(), &mut types)?;
    Ok(types[package.ty()].imports.keys().cloned().collect())
}

fn register(graph: &mut CompositionGraph, name: &str, bytes: &[u8]) -> anyhow::Result<PackageId> {
    let package =
        Package::from_bytes(name, None, bytes.to_vec(), graph.types_mut()).with_context(|| {
            format!(
                "the {} is not a component",
                name.trim_start_matches("flowfabric:")
            )
        })?;
    Ok(graph.register_package(package)?)
}

fn instance_exports(graph: &CompositionGraph, instance: NodeId) -> Vec<String> {
    let package = graph[instance]
        .package()
        .expect("an instantiation node has a package");
    graph.types()[graph[package].ty()]
        .exports
        .keys()
        .cloned()
        .collect()
}

/// The exports of `instance` that are interfaces without functions.
fn types_only_exports(graph: &CompositionGraph, instance: NodeId) -> Vec<String> {
    let package = graph[instance]
        .package()
        .expect("an instantiation node has a package");
    let types = graph.types();
    types[graph[package].ty()]
        .exports
        .iter()
        .filter(|(_, kind)| match kind {
            ItemKind::Instance(id) => types[*id]
                .exports
                .values()
                .all(|item| matches!(item, ItemKind::Type(_))),
            _ => false,
        })
        .map(|(name, _)| name.clone())
        .collect()
}

/// Instantiate `package`, each import taken from the first of `sources` that exports its name;
/// `wasi:*` imports nothing provides are left to the runtime.
fn instantiate(
    graph: &mut CompositionGraph,
    package: PackageId,
    sources: &[NodeId],
) -> anyhow::Result<NodeId> {
    let instance = graph.instantiate(package);
    let wanted: Vec<String> = graph.types()[graph[package].ty()]
        .imports
        .keys()
        .cloned()
        .collect();
    for name in wanted {
        let source = sources
            .iter()
            .find(|source| instance_exports(graph, **source).contains(&name));
        match source {
            Some(source) => {
                let export = graph.alias_instance_export(*source, &name)?;
                graph
                    .set_instantiation_argument(instance, &name, export)
                    .with_context(|| format!("cannot plug `{name}`"))?;
            }
            None if name.starts_with("wasi:") => {}
            None => bail!(
                "the {} imports `{name}`, which none of the components exports",
                graph[package].name().trim_start_matches("flowfabric:")
            ),
        }
    }
    Ok(instance)
}
