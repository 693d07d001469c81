//! `import "stdlib/…" as x;`: modules shipped with nsh, embedded in the
//! binary so they resolve from any directory. Other paths resolve from disk.

use rhai::module_resolvers::{FileModuleResolver, ModuleResolversCollection};
use rhai::{Engine, EvalAltResult, Module, ModuleResolver, Position, Scope, Shared};

/// The shipped modules: (import path, source).
pub const MODULES: &[(&str, &str)] = &[
    (
        "stdlib/registration",
        include_str!("../../stdlib/registration.rhai"),
    ),
    (
        "stdlib/bootstrap",
        include_str!("../../stdlib/bootstrap.rhai"),
    ),
    (
        "stdlib/firmware",
        include_str!("../../stdlib/firmware.rhai"),
    ),
    (
        "stdlib/ets/common",
        include_str!("../../stdlib/ets/common.rhai"),
    ),
];

/// Resolves the shipped modules, compiled with the importing engine so they
/// can call every nsh command.
struct Embedded;

impl ModuleResolver for Embedded {
    fn resolve(
        &self,
        engine: &Engine,
        _source: Option<&str>,
        path: &str,
        pos: Position,
    ) -> Result<Shared<Module>, Box<EvalAltResult>> {
        let key = path.strip_suffix(".rhai").unwrap_or(path);
        let Some((name, source)) = MODULES.iter().find(|(n, _)| *n == key) else {
            return Err(Box::new(EvalAltResult::ErrorModuleNotFound(
                path.into(),
                pos,
            )));
        };
        let mut ast = engine.compile(*source).map_err(|e| {
            Box::new(EvalAltResult::ErrorInModule(
                name.to_string(),
                Box::new(e.into()),
                pos,
            ))
        })?;
        ast.set_source(*name);
        let module = Module::eval_ast_as_new(Scope::new(), &ast, engine)
            .map_err(|e| Box::new(EvalAltResult::ErrorInModule(name.to_string(), e, pos)))?;
        Ok(module.into())
    }
}

/// Shipped modules first, then files relative to the working directory.
pub fn resolver() -> ModuleResolversCollection {
    let mut all = ModuleResolversCollection::new();
    all.push(Embedded);
    all.push(FileModuleResolver::new());
    all
}
