//! Fault injection at the prompt: the fault arguments of `set` (`loss`,
//! `dup`, `delay_ms`, `reorder`, `direction`, `seed`, `client`, `faults`)
//! turned into the transport's [`FaultSettings`], and `rebind`.

use rhai::Dynamic;

use crate::script::command::CmdResult;
use crate::script::ctx::Ctx;
use crate::script::typed::{NoArgs, command};
use crate::transport::faults::{DelayRange, FaultDirection, FaultSpec, describe};

crate::arguments! {
    /// The fault arguments of `set`.
    pub(super) struct FaultArgs {
        loss: Option<f64> = opt(Float, "unchanged (0)"),
        dup: Option<f64> = opt(Float, "unchanged (0)"),
        delay_ms: Option<String> = opt(Str, "unchanged (0)"),
        reorder: Option<f64> = opt(Float, "unchanged (0)"),
        direction: Option<String> = opt(Str, "unchanged (both)"),
        seed: Option<i64> = opt(Int, "unchanged (0)"),
        client: Option<String> = opt(Str, "every client"),
        faults: Option<bool> = opt(Bool, "unchanged; 0 turns every fault off"),
    }
}

/// Applies the fault arguments given; returns the lines to announce, or
/// `None` when none was given.
pub(super) fn apply(ctx: &Ctx, a: FaultArgs) -> Result<Option<Vec<String>>, String> {
    let edits = a.loss.is_some()
        || a.dup.is_some()
        || a.delay_ms.is_some()
        || a.reorder.is_some()
        || a.direction.is_some();
    if !edits && a.seed.is_none() && a.faults.is_none() && a.client.is_none() {
        return Ok(None);
    }
    let mut settings = ctx.server.faults();
    match a.faults {
        Some(false) => settings = Default::default(),
        Some(true) => {
            return Err(
                "set: `faults`: 1 turns nothing on; give loss=, dup=, delay_ms= or reorder=".into(),
            );
        }
        None => {}
    }
    if let Some(seed) = a.seed {
        settings.seed =
            u64::try_from(seed).map_err(|_| format!("set: `seed`: {seed} must be 0 or more"))?;
    }
    let peer = match &a.client {
        None => None,
        Some(ep) => {
            if !edits {
                return Err(format!(
                    "set: `client`: give the faults for `{ep}` (loss=, dup=, delay_ms=, reorder=, direction=)"
                ));
            }
            Some(
                ctx.server
                    .client_peer(ep)
                    .map_err(|e| format!("set: {e}"))?,
            )
        }
    };
    if edits {
        let mut spec: FaultSpec = match peer {
            Some(p) => *settings.spec_for(p),
            None => settings.all,
        };
        let p = |name: &str, v: Option<f64>, slot: &mut f64| -> Result<(), String> {
            if let Some(v) = v {
                *slot = FaultSpec::probability(name, v).map_err(|e| format!("set: {e}"))?;
            }
            Ok(())
        };
        p("loss", a.loss, &mut spec.loss)?;
        p("dup", a.dup, &mut spec.dup)?;
        p("reorder", a.reorder, &mut spec.reorder)?;
        if let Some(d) = &a.delay_ms {
            spec.delay_ms = DelayRange::parse(d).map_err(|e| format!("set: `delay_ms`: {e}"))?;
        }
        if let Some(d) = &a.direction {
            spec.direction =
                FaultDirection::parse(d).map_err(|e| format!("set: `direction`: {e}"))?;
        }
        settings.set(peer, spec);
    }
    ctx.server.set_faults(settings.clone());
    let mut lines = describe(&settings);
    if ctx.server.is_tcp() && !settings.is_off() {
        lines.push("(not on this TCP socket: faults apply to UDP and DTLS datagrams)".into());
    }
    Ok(Some(lines))
}

/// The lines `set` lists.
pub(super) fn listing(ctx: &Ctx) -> Vec<String> {
    describe(&ctx.server.faults())
}

command! {
    /// `rebind`.
    pub(super) const REBIND = "rebind";
    args: NoArgs,
    help: "Moves nsh's UDP or DTLS socket to a new free port, as an address translator that forgets its mapping would: from now on peers get nsh's datagrams from the new port, and what they send to the old one is lost. Registrations, DTLS sessions and exchanges stay. Returns the new port.",
    example: "listen 0  |  rebind",
    run: cmd_rebind,
}

fn cmd_rebind(ctx: &Ctx, _: NoArgs) -> CmdResult {
    let port = ctx.server.rebind().map_err(|e| format!("rebind: {e}"))?;
    ctx.say(&format!("now sending from port {port}"));
    Ok(Dynamic::from_int(i64::from(port)))
}
