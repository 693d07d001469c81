//! Device Management and Service Enablement (LwM2M TS Core §6.3): `read`,
//! `discover`, `write`, `write_file` (Block1), `write_attributes`,
//! `execute`, `create`, `delete`, `read_composite`, `write_composite`.
//!
//! Each in the single-definition form ([`command!`]).

use std::time::Duration;

use rhai::Dynamic;

use crate::coap::{CoapOption, Code, ContentFormat, Message, OptionNumber, escaped};
use crate::exchange::{Block1Progress, Block1Upload, BlockError, Progress};
use crate::lwm2m::request::{self as rq, Build};
use crate::script::command::CmdResult;
use crate::script::ctx::Ctx;
use crate::script::message::Msg;
use crate::script::send::{Attributes, Header, Payload, SET_TIMEOUT, err, send};
use crate::script::typed::command;
use crate::server::SendOptions;

command! {
    /// `read`.
    pub(super) const READ = "read";
    /// The arguments of `read`.
    struct ReadArgs {
        path: String = req(Str),
        accept: Option<ContentFormat> = opt(Format, "none"),
        ..header: Header,
        timeout_s: Option<Duration> = opt(Float, SET_TIMEOUT),
    }
    help: "Sends a Read (GET) and returns the response.",
    example: "read /3/0 APPLICATION_LWM2M_TLV      |  let r = read(\"/3/0\", #{accept: \"tlv\"});",
    run: read,
}

command! {
    /// `discover`.
    pub(super) const DISCOVER = "discover";
    /// The arguments of `discover`.
    struct DiscoverArgs {
        path: String = req(Str),
        depth: Option<i64> = opt(Int, "none"),
        ..header: Header,
        timeout_s: Option<Duration> = opt(Float, SET_TIMEOUT),
    }
    help: "Sends a Discover (GET, Accept link-format) and returns the response.",
    example: "discover /3",
    run: discover,
}

command! {
    /// `write`.
    pub(super) const WRITE = "write";
    /// The arguments of `write`.
    struct WriteArgs {
        path: String = req(Str),
        content: Payload = req(Bytes),
        format: Option<ContentFormat> = opt(Format, "TEXT_PLAIN"),
        update: Option<bool> = opt(Bool, "0 (replace: PUT)"),
        ..header: Header,
        timeout_s: Option<Duration> = opt(Float, SET_TIMEOUT),
    }
    help: "Sends a Write: PUT (replace), or POST with update=1 (partial update).",
    example: "write /3/0/14 +02:00  |  write(\"/1/0/1\", \"60\")",
    run: write,
}

command! {
    /// `write_file`.
    pub(super) const WRITE_FILE = "write_file";
    /// The arguments of `write_file`.
    struct WriteFileArgs {
        fname: String = req(Str),
        path: String = req(Str),
        format: Option<ContentFormat> = opt(Format, "APPLICATION_OCTET_STREAM"),
        chunksize: Option<u32> = opt(Int, "1024"),
        timeout_s: Option<Duration> = opt(Float, SET_TIMEOUT),
        update: Option<bool> = opt(Bool, "0"),
        options: Vec<CoapOption> = opt(Options, "[]"),
    }
    help: "Pushes a file with Block1 (a Write per block, following the block size the client asks for, Size1 on the first), printing progress; returns the final response.",
    example: "write_file firmware.bin /5/0/0",
    run: write_file,
}

command! {
    /// `write_attributes`.
    pub(super) const WRITE_ATTRIBUTES = "write_attributes";
    /// The arguments of `write_attributes`.
    struct WriteAttributesArgs {
        path: String = req(Str),
        ..attributes: Attributes,
        query: Option<Vec<String>> = opt(List, "none"),
        ..header: Header,
        timeout_s: Option<Duration> = opt(Float, SET_TIMEOUT),
    }
    help: "Sends a Write-Attributes (PUT with the attributes as Uri-Query); LwM2M 1.2 edge, con, hqmax included.",
    example: "write_attributes /3/0/13 pmin=1 pmax=5",
    run: write_attributes,
}

command! {
    /// `execute`.
    pub(super) const EXECUTE = "execute";
    /// The arguments of `execute`.
    struct ExecuteArgs {
        path: String = req(Str),
        content: Vec<u8> = opt(Bytes, "empty"),
        ..header: Header,
        timeout_s: Option<Duration> = opt(Float, SET_TIMEOUT),
    }
    help: "Sends an Execute (POST, arguments as payload).",
    example: "execute /3/0/4",
    run: execute,
}

command! {
    /// `create`.
    pub(super) const CREATE = "create";
    /// The arguments of `create`.
    struct CreateArgs {
        path: String = req(Str),
        content: Payload = opt(Bytes, "empty"),
        ..header: Header,
        format: Option<ContentFormat> = opt(Format, "APPLICATION_LWM2M_TLV"),
        timeout_s: Option<Duration> = opt(Float, SET_TIMEOUT),
    }
    help: "Sends a Create (POST to an Object path).",
    example: "create /1 \\x08\\x02\\x03\\xc1\\x00\\x02",
    run: create,
}

command! {
    /// `delete`.
    pub(super) const DELETE = "delete";
    /// The arguments of `delete`.
    struct DeleteArgs {
        path: String = req(Str),
        ..header: Header,
        timeout_s: Option<Duration> = opt(Float, SET_TIMEOUT),
    }
    help: "Sends a Delete.",
    example: "delete /1/2",
    run: delete,
}

command! {
    /// `read_composite`.
    pub(super) const READ_COMPOSITE = "read_composite";
    /// The arguments of `read_composite`.
    struct ReadCompositeArgs {
        paths: Option<Vec<String>> = req(List),
        accept: Option<ContentFormat> = opt(Format, "none"),
        ..header: Header,
        timeout_s: Option<Duration> = opt(Float, SET_TIMEOUT),
    }
    help: "Sends a Read-Composite (FETCH with a SenML CBOR path list).",
    example: "read_composite [/3/0/0,/1/1]",
    run: read_composite,
}

command! {
    /// `write_composite`.
    pub(super) const WRITE_COMPOSITE = "write_composite";
    /// The arguments of `write_composite`.
    struct WriteCompositeArgs {
        content: Payload = req(Bytes),
        format: Option<ContentFormat> = opt(Format, "APPLICATION_LWM2M_SENML_CBOR"),
        ..header: Header,
        timeout_s: Option<Duration> = opt(Float, SET_TIMEOUT),
    }
    help: "Sends a Write-Composite (iPATCH); CONTENT is bytes or a map of path → value (SenML CBOR unless `format` says otherwise).",
    example: "write_composite \\x81\\xa2\\x00\\x66/1/1/1\\x02\\x18\\x3c senml+cbor  |  write_composite(#{\"/1/1/1\": 250, \"/3/0/14\": \"+02:00\"})",
    run: write_composite,
}

fn read(ctx: &Ctx, a: ReadArgs) -> CmdResult {
    let b = rq::Read {
        path: a.path,
        accept: a.accept,
        header: a.header.into(),
    };
    send(ctx, a.timeout_s, b.build().map_err(err)?)
}

fn discover(ctx: &Ctx, a: DiscoverArgs) -> CmdResult {
    let b = rq::Discover {
        path: a.path,
        depth: a.depth,
        header: a.header.into(),
    };
    send(ctx, a.timeout_s, b.build().map_err(err)?)
}

fn write(ctx: &Ctx, a: WriteArgs) -> CmdResult {
    let (content, format) = a.content.encode_for(
        Some(&a.path),
        a.format,
        ContentFormat::LWM2M_TLV,
        &ctx.server.objects().read(),
    )?;
    let b = rq::Write {
        path: a.path,
        content,
        format,
        update: a.update.unwrap_or(false),
        header: a.header.into(),
    };
    send(ctx, a.timeout_s, b.build().map_err(err)?)
}

/// `write_file`: pushes a file with Block1 (RFC 7959 §2.5), one block at a
/// time, following the block size the server asks for, with Size1 on the
/// first block. Prints progress; returns the final response.
fn write_file(ctx: &Ctx, a: WriteFileArgs) -> CmdResult {
    let fname = a.fname;
    let data = std::fs::read(&fname).map_err(|e| format!("cannot read {fname}: {e}"))?;
    let path = a.path;
    let format = a.format.unwrap_or(ContentFormat::OCTET_STREAM);
    let size = a.chunksize.unwrap_or(1024);
    // SZX 7 (2048) is reserved over UDP (RFC 7959 §2.2) and BERT over TCP
    // (RFC 8323 §6), which nsh takes but does not send: refused on both.
    let mut upload = Block1Upload::new(data, size).map_err(|e| format!("`chunksize`: {e}"))?;
    let timeout = a.timeout_s.unwrap_or_else(|| ctx.server.request_wait(true));
    let extra = a.options;
    let update = a.update.unwrap_or(false);
    let total = upload.total();
    let mut blocks = 0u32;
    let mut progress = Progress::new(WRITE_FILE.name, "sent", Some(total));
    while let Some(req) = upload.next_request() {
        let (num, offset) = (req.block.num, req.offset);
        let mut options = extra.clone();
        options.push(CoapOption::new(OptionNumber::BLOCK1, req.block.encode()));
        if let Some(size1) = req.size1 {
            options.push(CoapOption::uint(OptionNumber::SIZE1, size1));
        }
        let b = rq::Write {
            path: path.clone(),
            content: req.payload.to_vec(),
            format: Some(format),
            update,
            header: rq::Header {
                options,
                ..rq::Header::default()
            },
        };
        let built = b.build().map_err(err)?;
        let opts = SendOptions {
            fill_message_id: true,
            fill_token: true,
            wait: Some(timeout),
        };
        let sent = ctx
            .server
            .send(built.message, opts)
            .map_err(|e| format!("block {num} ({offset}/{total} bytes sent): {e}"))?;
        let response = sent.response.ok_or("no response")?;
        let msg = response.message.as_ref().map_err(|e| e.to_string())?;
        blocks += 1;
        match upload.on_response(msg) {
            Ok(Block1Progress::Complete) => {
                if total > 0 && ctx.listings {
                    ctx.say(&format!("write_file: {total} bytes in {blocks} blocks"));
                }
                return Ok(Dynamic::from(Msg(response)));
            }
            Ok(Block1Progress::Continue) => {}
            Err(BlockError::ErrorResponse { code, num }) => {
                return Err(refusal(num, code, msg));
            }
            Err(e) => return Err(format!("{e} ({offset}/{total} bytes sent)")),
        }
        if let Some(line) = progress.after(num, upload.acknowledged()) {
            ctx.say(&line);
        }
    }
    Err("the upload ended without a final response".to_string())
}

/// The error for an error response to Block1 block `num`: the code once,
/// the diagnostic payload if any, and for 4.13 the size the client accepts
/// when it gave one (Size1, RFC 7959 §2.9.3).
fn refusal(num: u32, code: Code, response: &Message) -> String {
    let mut text = format!("block {num} answered {code}");
    if !response.payload.is_empty() {
        text.push_str(&format!(
            ": {}",
            escaped::content_summary(&response.payload)
        ));
    }
    if code == Code::REQUEST_ENTITY_TOO_LARGE
        && let Some(size1) = response.uint_option(OptionNumber::SIZE1)
    {
        text.push_str(&format!(
            "; the client accepts at most {size1} bytes (its Size1, RFC 7959 §2.9.3)"
        ));
    }
    text
}

fn write_attributes(ctx: &Ctx, a: WriteAttributesArgs) -> CmdResult {
    let b = a.attributes.write_attributes(a.path, a.query, a.header);
    send(ctx, a.timeout_s, b.build().map_err(err)?)
}

fn execute(ctx: &Ctx, a: ExecuteArgs) -> CmdResult {
    let b = rq::Execute {
        path: a.path,
        content: a.content,
        header: a.header.into(),
    };
    send(ctx, a.timeout_s, b.build().map_err(err)?)
}

fn create(ctx: &Ctx, a: CreateArgs) -> CmdResult {
    let (content, format) = a.content.encode_for(
        Some(&a.path),
        a.format,
        ContentFormat::LWM2M_TLV,
        &ctx.server.objects().read(),
    )?;
    let b = rq::Create {
        path: a.path,
        content,
        format,
        header: a.header.into(),
    };
    send(ctx, a.timeout_s, b.build().map_err(err)?)
}

fn delete(ctx: &Ctx, a: DeleteArgs) -> CmdResult {
    let b = rq::Delete {
        path: a.path,
        header: a.header.into(),
    };
    send(ctx, a.timeout_s, b.build().map_err(err)?)
}

fn read_composite(ctx: &Ctx, a: ReadCompositeArgs) -> CmdResult {
    let b = rq::ReadComposite {
        paths: a.paths.unwrap_or_default(),
        accept: a.accept,
        header: a.header.into(),
    };
    send(ctx, a.timeout_s, b.build().map_err(err)?)
}

fn write_composite(ctx: &Ctx, a: WriteCompositeArgs) -> CmdResult {
    let (content, format) = a.content.encode(
        a.format,
        ContentFormat::SENML_CBOR,
        &ctx.server.objects().read(),
    )?;
    let format = format.unwrap_or(ContentFormat::SENML_CBOR);
    let b = rq::WriteComposite {
        content,
        format,
        header: a.header.into(),
    };
    send(ctx, a.timeout_s, b.build().map_err(err)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::script::args::Kind;

    #[test]
    fn write_file_keeps_its_table() {
        let table: Vec<(&str, Kind, Option<&str>)> = WRITE_FILE
            .params
            .iter()
            .map(|p| (p.name, p.kind, p.default))
            .collect();
        assert_eq!(
            table,
            [
                ("fname", Kind::Str, None),
                ("path", Kind::Str, None),
                ("format", Kind::Format, Some("APPLICATION_OCTET_STREAM")),
                ("chunksize", Kind::Int, Some("1024")),
                (
                    "timeout_s",
                    Kind::Float,
                    Some("set timeout, else until CoAP gives up")
                ),
                ("update", Kind::Bool, Some("0")),
                ("options", Kind::Options, Some("[]")),
            ]
        );
    }
}
