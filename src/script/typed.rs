//! Typed command arguments from one definition: [`arguments!`](crate::arguments)
//! declares a struct whose fields are a command's parameters, and derives
//! from the same lines the parameter table (names, order, kinds, defaults:
//! what `help`, completion and the binding of positional and named values
//! use) and the parse of bound [`Args`] into the struct.
//!
//! A parameter's name is its field's name, so renaming one renames the
//! other; a parameter the implementation never reads is a field never
//! read, which `dead_code` reports (an error under `-D warnings`). The
//! field's type decides how the value is read ([`FromArg`]); a field of a
//! group type ([`ArgGroup`], e.g. the message header) takes the group's
//! parameters in its place.
//!
//! Not here: what commands do (`commands/`), or how values are converted
//! (`args`).

use std::time::Duration;

use rhai::Dynamic;

use super::args::{ArgError, Args, Param};
use crate::coap::{CoapOption, Code, ContentFormat, Type};

/// A parameter's value, read from bound arguments as the field's type says.
pub trait FromArg: Sized {
    /// Reads parameter `name`; `Option` types are `None` when not given.
    fn from_arg(a: &Args, name: &'static str) -> Result<Self, ArgError>;
}

macro_rules! from_arg {
    ($($ty:ty => |$a:ident, $n:ident| $read:expr;)*) => {
        $(
            impl FromArg for $ty {
                fn from_arg($a: &Args, $n: &'static str) -> Result<Self, ArgError> {
                    $read
                }
            }
        )*
    };
}

from_arg! {
    Option<String> => |a, n| a.str(n);
    String => |a, n| Ok(a.str(n)?.unwrap_or_default());
    Option<i64> => |a, n| a.int(n);
    Option<u16> => |a, n| a.int_in::<u16>(n);
    Option<u32> => |a, n| a.int_in::<u32>(n);
    Option<f64> => |a, n| a.float(n);
    Option<bool> => |a, n| a.bool(n);
    Option<Vec<u8>> => |a, n| a.bytes(n);
    Vec<u8> => |a, n| Ok(a.bytes(n)?.unwrap_or_default());
    Option<ContentFormat> => |a, n| a.format(n);
    Option<Code> => |a, n| a.code(n);
    Option<Type> => |a, n| a.mtype(n);
    Option<Vec<String>> => |a, n| a.list(n);
    Vec<CoapOption> => |a, n| a.options(n);
    Option<Duration> => |a, n| a.seconds(n);
    Option<Dynamic> => |a, n| Ok(a.raw(n).cloned());
}

/// A struct of parameters declared with [`arguments!`](crate::arguments):
/// its table, and its parse.
pub trait ArgGroup: Sized {
    /// The parameters, in order.
    const PARAMS: &'static [Param];
    /// Reads every field from bound arguments.
    fn parse(a: &Args) -> Result<Self, ArgError>;
}

/// The parameter name of a field: its name without a raw `r#` prefix.
pub const fn param_name(field: &'static str) -> &'static str {
    match field.as_bytes() {
        [b'r', b'#', rest @ ..] => match std::str::from_utf8(rest) {
            Ok(s) => s,
            Err(_) => field,
        },
        _ => field,
    }
}

/// How many parameters `parts` hold together.
pub const fn total(parts: &[&[Param]]) -> usize {
    let mut n = 0;
    let mut i = 0;
    while i < parts.len() {
        n += parts[i].len();
        i += 1;
    }
    n
}

/// `parts` one after the other; `N` is their [`total`].
pub const fn concat<const N: usize>(parts: &[&[Param]]) -> [Param; N] {
    let mut out = [super::args::req("", super::args::Kind::Any); N];
    let mut k = 0;
    let mut i = 0;
    while i < parts.len() {
        let mut j = 0;
        while j < parts[i].len() {
            out[k] = parts[i][j];
            k += 1;
            j += 1;
        }
        i += 1;
    }
    out
}

/// Declares a struct of command arguments and derives its parameter table
/// and its parse ([`ArgGroup`](crate::script::typed::ArgGroup)) from the
/// same lines. A field is `name: Type = req(KIND)` or
/// `name: Type = opt(KIND, "default shown in help")`, or `..name: Group`
/// for a group of parameters declared the same way; every entry ends with a
/// comma. `KIND` is a [`Kind`](crate::script::args::Kind) variant.
///
/// ```
/// use nsh::script::args::Args;
/// use nsh::script::typed::ArgGroup;
///
/// nsh::arguments! {
///     /// The arguments of a read.
///     struct Read {
///         path: String = req(Str),
///         accept: Option<nsh::coap::ContentFormat> = opt(Format, "none"),
///     }
/// }
///
/// fn main() {
///     let names: Vec<&str> = Read::PARAMS.iter().map(|p| p.name).collect();
///     assert_eq!(names, ["path", "accept"]);
///     let bound = Args::bind("read", Read::PARAMS, vec!["/3/0".into(), "tlv".into()], vec![]);
///     let read = Read::parse(&bound.unwrap()).unwrap();
///     assert_eq!(read.path, "/3/0");
///     assert!(read.accept.is_some());
/// }
/// ```
///
/// Inside this crate, a field (so a parameter) that the implementation
/// never reads is reported by `dead_code`, an error under `-D warnings`.
/// (Lints are not reported inside macros of other crates, so the example
/// above would compile with `accept` unread.)
#[macro_export]
macro_rules! arguments {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident { $($body:tt)* }
    ) => {
        $crate::arguments!(@munch args [$(#[$meta])* $vis $name] [] [] [] $($body)*);
    };
    (@munch $a:ident $head:tt [$($fields:tt)*] [$($params:tt)*] [$($parse:tt)*]
        $field:ident : $ty:ty = $spec:ident ( $kind:ident $(, $default:expr)? ) , $($rest:tt)*
    ) => {
        $crate::arguments!(@munch $a $head
            [$($fields)* $field: $ty,]
            [$($params)* &[$crate::script::args::$spec(
                $crate::script::typed::param_name(stringify!($field)),
                $crate::script::args::Kind::$kind
                $(, $default)?
            )],]
            [$($parse)* $field: <$ty as $crate::script::typed::FromArg>::from_arg(
                $a,
                $crate::script::typed::param_name(stringify!($field)),
            )?,]
            $($rest)*);
    };
    (@munch $a:ident $head:tt [$($fields:tt)*] [$($params:tt)*] [$($parse:tt)*]
        .. $field:ident : $ty:ty , $($rest:tt)*
    ) => {
        $crate::arguments!(@munch $a $head
            [$($fields)* $field: $ty,]
            [$($params)* <$ty as $crate::script::typed::ArgGroup>::PARAMS,]
            [$($parse)* $field: <$ty as $crate::script::typed::ArgGroup>::parse($a)?,]
            $($rest)*);
    };
    (@munch $a:ident [$(#[$meta:meta])* $vis:vis $name:ident]
        [$($fields:tt)*] [$($params:tt)*] [$($parse:tt)*]
    ) => {
        $(#[$meta])*
        $vis struct $name { $($fields)* }

        impl $crate::script::typed::ArgGroup for $name {
            const PARAMS: &'static [$crate::script::args::Param] = {
                const PARTS: &[&[$crate::script::args::Param]] = &[$($params)*];
                const N: usize = $crate::script::typed::total(PARTS);
                const P: [$crate::script::args::Param; N] = $crate::script::typed::concat(PARTS);
                &P
            };

            #[allow(unused_variables)] // a struct without fields reads nothing
            fn parse(
                $a: &$crate::script::args::Args,
            ) -> ::std::result::Result<Self, $crate::script::args::ArgError> {
                Ok($name { $($parse)* })
            }
        }
    };
}

/// Declares a command from one definition: its arguments struct (as
/// [`arguments!`](crate::arguments); or `args: Type,` to share one), and the
/// [`Command`](super::command::Command) whose table is that struct's and
/// whose implementation `run` takes the parsed struct.
macro_rules! command {
    (
        $(#[$meta:meta])*
        $vis:vis const $cmd:ident = $cmd_name:literal;
        $(#[$ameta:meta])*
        struct $args:ident { $($body:tt)* }
        help: $help:expr,
        example: $example:expr,
        run: $run:path $(,)?
    ) => {
        $crate::arguments! {
            $(#[$ameta])*
            struct $args { $($body)* }
        }

        $crate::script::typed::command! {
            $(#[$meta])*
            $vis const $cmd = $cmd_name;
            args: $args,
            help: $help,
            example: $example,
            run: $run,
        }
    };
    (
        $(#[$meta:meta])*
        $vis:vis const $cmd:ident = $cmd_name:literal;
        args: $args:ty,
        help: $help:expr,
        example: $example:expr,
        run: $run:path $(,)?
    ) => {
        $(#[$meta])*
        $vis const $cmd: $crate::script::command::Command = $crate::script::command::Command {
            name: $cmd_name,
            params: <$args as $crate::script::typed::ArgGroup>::PARAMS,
            help: $help,
            example: $example,
            run: {
                fn run(
                    ctx: &$crate::script::ctx::Ctx,
                    a: &$crate::script::args::Args,
                ) -> $crate::script::command::CmdResult {
                    $run(ctx, <$args as $crate::script::typed::ArgGroup>::parse(a)?)
                }
                run
            },
        };
    };
}
pub(crate) use command;

crate::arguments! {
    /// The arguments of a command that takes none.
    pub struct NoArgs {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::script::args::Kind;

    crate::arguments! {
        struct Header {
            msg_id: Option<u16> = opt(Int, "auto"),
            token: Option<Vec<u8>> = opt(Bytes, "8 random bytes"),
        }
    }

    crate::arguments! {
        struct Typed {
            path: String = req(Str),
            ..header: Header,
            r#type: Option<Type> = opt(Type, "ACKNOWLEDGEMENT"),
            timeout_s: Option<Duration> = opt(Float, "set timeout (5)"),
        }
    }

    #[test]
    fn the_table_follows_the_fields_groups_in_place() {
        let table: Vec<(&str, Kind, Option<&str>)> = Typed::PARAMS
            .iter()
            .map(|p| (p.name, p.kind, p.default))
            .collect();
        assert_eq!(
            table,
            [
                ("path", Kind::Str, None),
                ("msg_id", Kind::Int, Some("auto")),
                ("token", Kind::Bytes, Some("8 random bytes")),
                ("type", Kind::Type, Some("ACKNOWLEDGEMENT")),
                ("timeout_s", Kind::Float, Some("set timeout (5)")),
            ]
        );
    }

    #[test]
    fn every_given_argument_reaches_its_field() {
        let a = Args::bind(
            "cmd",
            Typed::PARAMS,
            vec!["/3/0".into()],
            vec![
                ("msg_id".into(), Dynamic::from_int(7)),
                ("token".into(), "\\x01".into()),
                ("type".into(), "CON".into()),
                ("timeout_s".into(), Dynamic::from_float(1e300)),
            ],
        )
        .unwrap();
        let t = Typed::parse(&a).unwrap();
        assert_eq!(t.path, "/3/0");
        assert_eq!(t.header.msg_id, Some(7));
        assert_eq!(t.header.token, Some(vec![1]));
        assert_eq!(t.r#type, Some(Type::Confirmable));
        assert_eq!(t.timeout_s, Some(super::super::args::MAX_WAIT));
    }

    #[test]
    fn a_wrong_value_names_the_command_and_the_parameter() {
        let a = Args::bind(
            "cmd",
            Typed::PARAMS,
            vec!["/3/0".into()],
            vec![("msg_id".into(), Dynamic::from_int(70_000))],
        )
        .unwrap();
        let e = Typed::parse(&a).err().unwrap();
        assert_eq!(e, "cmd: `msg_id`: 70000 is out of range");
    }
}
