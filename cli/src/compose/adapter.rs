//! The atomic adapter: a component generated for one guest that exports every interface the
//! guest exports and forwards each call to the guest inside one transaction of the SQLite
//! provider (`transaction.begin`, then `commit` when the guest returned `ok` or `rollback` when
//! it returned `err`). A trap aborts the call with the transaction still open, which is never
//! committed: the runtime discards the instance, and SQLite rolls the file back from its journal
//! at the next open. This restores, outside our host, the host's rule that every operation is
//! one transaction.
//!
//! The adapter is derived from the guest's own WIT (decoded from the component), so a guest with
//! new operation families needs no change here. Its core module works on the canonical ABI's
//! flat values and copies nothing: each export receives the caller's flat parameters (strings
//! and lists already copied into the adapter's memory through its `cabi_realloc`), passes them
//! unchanged to the guest's function of the same name (whose lowering copies them into the
//! guest), and hands back the guest's results from a fixed return area. Its allocator is a bump
//! allocator reset by each export's post-return function, when the caller has read the results.

use anyhow::{Context, bail};
use wasm_encoder::{
    BlockType, CodeSection, ConstExpr, EntityType, ExportKind, ExportSection, Function,
    FunctionSection, GlobalSection, GlobalType, ImportSection, Instruction, MemArg, MemorySection,
    MemoryType, Module, TypeSection, ValType,
};
use wit_component::{ComponentEncoder, StringEncoding};
use wit_parser::abi::{AbiVariant, WasmSignature, WasmType};
use wit_parser::{
    Function as WitFunction, Resolve, SizeAlign, Type, TypeDefKind, WorldItem, WorldKey,
};

/// The provider's transaction interface (the package `flowfabric:standalone`).
const TRANSACTION_WIT: &str = include_str!("../../../standalone/wit/transaction.wit");
/// The name the provider exports the transaction interface under.
const TRANSACTION_INTERFACE: &str = "flowfabric:standalone/transaction@0.1.0";
/// Where the guest's results are written (flat results that do not fit one value).
const RETURN_AREA: u32 = 16;
/// Function indices of the transaction imports (imported first, in this order).
const BEGIN: u32 = 0;
const COMMIT: u32 = 1;
const ROLLBACK: u32 = 2;

/// One engine operation the adapter wraps.
struct Operation {
    /// The exporting interface's name, e.g. `flowfabric:backend/scheduling@0.1.0`.
    interface: String,
    /// The function's name within it.
    function: WitFunction,
}

/// Generate the adapter component for the guest component `guest`.
pub fn generate(guest: &[u8]) -> anyhow::Result<Vec<u8>> {
    let (mut resolve, guest_world) =
        match wit_component::decode(guest).context("cannot read the guest's WIT")? {
            wit_component::DecodedWasm::Component(resolve, world) => (resolve, world),
            wit_component::DecodedWasm::WitPackage(..) => {
                bail!("the guest is a WIT package, not a component")
            }
        };
    let mut interfaces = Vec::new();
    for (key, item) in &resolve.worlds[guest_world].exports {
        let (WorldKey::Interface(id), WorldItem::Interface { .. }) = (key, item) else {
            bail!(
                "the guest exports `{}`, which is not a named interface; only operation \
                 families (interfaces) can be wrapped in transactions",
                resolve.name_world_key(key)
            );
        };
        let name = resolve
            .id_of(*id)
            .context("an exported interface without a package")?;
        interfaces.push((name, *id));
    }
    let mut world = String::from("world atomic-adapter {\n    import transaction;\n");
    for (name, _) in &interfaces {
        world.push_str(&format!("    import {name};\n    export {name};\n"));
    }
    world.push_str("}\n");
    let package = resolve
        .push_str("atomic-adapter.wit", &format!("{TRANSACTION_WIT}\n{world}"))
        .context("cannot describe the adapter's world")?;
    let adapter_world = resolve.select_world(&[package], Some("atomic-adapter"))?;
    let operations: Vec<Operation> = interfaces
        .iter()
        .flat_map(|(name, id)| {
            resolve.interfaces[*id]
                .functions
                .values()
                .map(|function| Operation {
                    interface: name.clone(),
                    function: function.clone(),
                })
        })
        .collect();
    let mut module = core_module(&resolve, &operations)?;
    wit_component::embed_component_metadata(
        &mut module,
        &resolve,
        adapter_world,
        StringEncoding::UTF8,
    )?;
    ComponentEncoder::default()
        .validate(true)
        .module(&module)?
        .encode()
        .context("cannot encode the adapter component")
}

fn val_type(ty: &WasmType) -> ValType {
    match ty {
        WasmType::I64 | WasmType::PointerOrI64 => ValType::I64,
        WasmType::F32 => ValType::F32,
        WasmType::F64 => ValType::F64,
        WasmType::I32 | WasmType::Pointer | WasmType::Length => ValType::I32,
    }
}

fn val_types(types: &[WasmType]) -> Vec<ValType> {
    types.iter().map(val_type).collect()
}

/// Whether `function` returns a `result`, whose discriminant (0 `ok`, 1 `err`) decides between
/// commit and rollback.
fn returns_result(resolve: &Resolve, function: &WitFunction) -> bool {
    matches!(function.result, Some(Type::Id(id)) if matches!(resolve.types[id].kind, TypeDefKind::Result(_)))
}

/// The adapter's core module: imports (transaction, then one per operation), the memory, the
/// allocator, and per operation an export and its post-return function.
fn core_module(resolve: &Resolve, operations: &[Operation]) -> anyhow::Result<Vec<u8>> {
    let mut sizes = SizeAlign::default();
    sizes.fill(resolve);
    let return_area_size = operations
        .iter()
        .filter_map(|op| op.function.result.as_ref())
        .map(|ty| sizes.size(ty).size_wasm32())
        .max()
        .unwrap_or(0) as u32;
    let heap_base = (RETURN_AREA + return_area_size).next_multiple_of(16);

    let mut types = TypeSection::new();
    let mut imports = ImportSection::new();
    let mut functions = FunctionSection::new();
    let mut exports = ExportSection::new();
    let mut code = CodeSection::new();
    let mut type_count = 0u32;
    let mut add_type = |types: &mut TypeSection, params: Vec<ValType>, results: Vec<ValType>| {
        types.ty().function(params, results);
        type_count += 1;
        type_count - 1
    };

    let unit = add_type(&mut types, vec![], vec![]);
    for name in ["begin", "commit", "rollback"] {
        imports.import(TRANSACTION_INTERFACE, name, EntityType::Function(unit));
    }
    let mut signatures = Vec::new();
    for op in operations {
        let import = resolve.wasm_signature(AbiVariant::GuestImport, &op.function);
        let export = resolve.wasm_signature(AbiVariant::GuestExport, &op.function);
        let ty = add_type(
            &mut types,
            val_types(&import.params),
            val_types(&import.results),
        );
        imports.import(&op.interface, &op.function.name, EntityType::Function(ty));
        signatures.push((import, export));
    }
    let imported = 3 + operations.len() as u32;

    // The allocator: cabi_realloc(old, old_size, align, new_size) -> ptr.
    let realloc_type = add_type(&mut types, vec![ValType::I32; 4], vec![ValType::I32]);
    functions.function(realloc_type);
    exports.export("cabi_realloc", ExportKind::Func, imported);
    code.function(&realloc());
    let mut next = imported + 1;

    for (position, (op, (import, export))) in operations.iter().zip(&signatures).enumerate() {
        let export_params = val_types(&export.params);
        let export_results = val_types(&export.results);
        let import_params = val_types(&import.params);
        if import_params[..export_params.len()] != export_params[..] {
            bail!(
                "{}#{}: unexpected flat signature",
                op.interface,
                op.function.name
            );
        }
        let name = format!("{}#{}", op.interface, op.function.name);
        let ty = add_type(&mut types, export_params.clone(), export_results.clone());
        functions.function(ty);
        exports.export(&name, ExportKind::Func, next);
        let import_index = 3 + position as u32;
        code.function(&forwarder(
            export_params.len() as u32,
            import,
            &import_results_local(import),
            import_index,
            returns_result(resolve, &op.function),
        ));
        next += 1;

        let post_return = add_type(&mut types, export_results.clone(), vec![]);
        functions.function(post_return);
        exports.export(&format!("cabi_post_{name}"), ExportKind::Func, next);
        let mut reset = Function::new(vec![]);
        reset
            .instruction(&Instruction::I32Const(heap_base as i32))
            .instruction(&Instruction::GlobalSet(0))
            .instruction(&Instruction::End);
        code.function(&reset);
        next += 1;
    }

    let mut memories = MemorySection::new();
    memories.memory(MemoryType {
        minimum: 1,
        maximum: None,
        memory64: false,
        shared: false,
        page_size_log2: None,
    });
    exports.export("memory", ExportKind::Memory, 0);
    let mut globals = GlobalSection::new();
    globals.global(
        GlobalType {
            val_type: ValType::I32,
            mutable: true,
            shared: false,
        },
        &ConstExpr::i32_const(heap_base as i32),
    );

    let mut module = Module::new();
    module
        .section(&types)
        .section(&imports)
        .section(&functions)
        .section(&memories)
        .section(&globals)
        .section(&exports)
        .section(&code);
    Ok(module.finish())
}

/// The local that holds a guest result returned as one flat value (none when it goes through
/// the return area or there is none).
fn import_results_local(import: &WasmSignature) -> Vec<ValType> {
    if import.retptr {
        Vec::new()
    } else {
        val_types(&import.results)
    }
}

/// An export: begin, call the guest with the same flat parameters, then commit or roll back
/// by the result's discriminant, and return the guest's results.
fn forwarder(
    params: u32,
    import: &WasmSignature,
    result_local: &[ValType],
    import_index: u32,
    is_result: bool,
) -> Function {
    let locals: Vec<(u32, ValType)> = result_local.iter().map(|ty| (1, *ty)).collect();
    let result = params; // the first local after the parameters
    let mut body = Function::new(locals);
    body.instruction(&Instruction::Call(BEGIN));
    for index in 0..params {
        body.instruction(&Instruction::LocalGet(index));
    }
    if import.retptr {
        body.instruction(&Instruction::I32Const(RETURN_AREA as i32));
    }
    body.instruction(&Instruction::Call(import_index));
    if !result_local.is_empty() {
        body.instruction(&Instruction::LocalSet(result));
    }
    if is_result {
        if import.retptr {
            body.instruction(&Instruction::I32Const(RETURN_AREA as i32))
                .instruction(&Instruction::I32Load8U(MemArg {
                    offset: 0,
                    align: 0,
                    memory_index: 0,
                }));
        } else {
            body.instruction(&Instruction::LocalGet(result));
        }
        body.instruction(&Instruction::If(BlockType::Empty))
            .instruction(&Instruction::Call(ROLLBACK))
            .instruction(&Instruction::Else)
            .instruction(&Instruction::Call(COMMIT))
            .instruction(&Instruction::End);
    } else {
        body.instruction(&Instruction::Call(COMMIT));
    }
    if import.retptr {
        body.instruction(&Instruction::I32Const(RETURN_AREA as i32));
    } else if !result_local.is_empty() {
        body.instruction(&Instruction::LocalGet(result));
    }
    body.instruction(&Instruction::End);
    body
}

/// `cabi_realloc(old, old_size, align, new_size)`: bump allocation from global 0, growing the
/// memory as needed, copying the old block's bytes when it grows one.
fn realloc() -> Function {
    let (old, old_size, align, new_size, pointer) = (0, 1, 2, 3, 4);
    let mut body = Function::new(vec![(1, ValType::I32)]);
    let instructions = [
        // pointer = (heap + align - 1) & -align
        Instruction::GlobalGet(0),
        Instruction::LocalGet(align),
        Instruction::I32Add,
        Instruction::I32Const(1),
        Instruction::I32Sub,
        Instruction::I32Const(0),
        Instruction::LocalGet(align),
        Instruction::I32Sub,
        Instruction::I32And,
        Instruction::LocalSet(pointer),
        // heap = pointer + new_size
        Instruction::LocalGet(pointer),
        Instruction::LocalGet(new_size),
        Instruction::I32Add,
        Instruction::GlobalSet(0),
        // grow until heap fits
        Instruction::Block(BlockType::Empty),
        Instruction::Loop(BlockType::Empty),
        Instruction::GlobalGet(0),
        Instruction::MemorySize(0),
        Instruction::I32Const(16),
        Instruction::I32Shl,
        Instruction::I32LeU,
        Instruction::BrIf(1),
        Instruction::I32Const(1),
        Instruction::MemoryGrow(0),
        Instruction::I32Const(-1),
        Instruction::I32Eq,
        Instruction::If(BlockType::Empty),
        Instruction::Unreachable,
        Instruction::End,
        Instruction::Br(0),
        Instruction::End,
        Instruction::End,
        // copy min(old_size, new_size) bytes of the old block
        Instruction::LocalGet(old_size),
        Instruction::If(BlockType::Empty),
        Instruction::LocalGet(pointer),
        Instruction::LocalGet(old),
        Instruction::LocalGet(old_size),
        Instruction::LocalGet(new_size),
        Instruction::LocalGet(old_size),
        Instruction::LocalGet(new_size),
        Instruction::I32LtU,
        Instruction::Select,
        Instruction::MemoryCopy {
            src_mem: 0,
            dst_mem: 0,
        },
        Instruction::End,
        Instruction::LocalGet(pointer),
        Instruction::End,
    ];
    for instruction in &instructions {
        body.instruction(instruction);
    }
    body
}

#[cfg(test)]
mod tests {
    use ff_backend_sqlite_wasm::BUILTIN_GUEST_COMPONENT;
    use wac_graph::types::{Package, Types};

    /// The names a component imports and exports.
    fn interface(component: &[u8]) -> (Vec<String>, Vec<String>) {
        let mut types = Types::default();
        let package =
            Package::from_bytes("flowfabric:inspected", None, component.to_vec(), &mut types)
                .unwrap();
        let world = &types[package.ty()];
        (
            world.imports.keys().cloned().collect(),
            world.exports.keys().cloned().collect(),
        )
    }

    #[test]
    fn the_adapter_exports_what_the_guest_exports_and_imports_it_with_the_transaction() {
        let adapter = super::generate(BUILTIN_GUEST_COMPONENT).unwrap();
        let (_, guest_exports) = interface(BUILTIN_GUEST_COMPONENT);
        let (imports, exports) = interface(&adapter);
        assert_eq!(exports, guest_exports);
        for name in &guest_exports {
            assert!(imports.contains(name), "{name} is imported");
        }
        assert!(imports.contains(&super::TRANSACTION_INTERFACE.to_owned()));
        assert!(imports.contains(&"flowfabric:backend/types@0.1.0".to_owned()));
    }
}
