//! Block-wise transfers (RFC 7959), the parts a server needs: reading a
//! large resource or notification with Block2 (building the request for
//! the next block, reassembling the body while checking that blocks arrive
//! in order, are full-sized and come from one representation (ETag), and
//! that the peer did not answer an error instead), and writing a large
//! body with Block1 ([`Block1Upload`]: which block to send next, following
//! a smaller size the peer asks for, checking what each 2.31 echoes);
//! and the progress lines and positions both print ([`Progress`]).
//!
//! SZX 7 is reserved over UDP and DTLS (RFC 7959 §2.2): received there it
//! is an error. Over TCP and TLS it is BERT (RFC 8323 §6), which nsh
//! announces in its CSM: a BERT block carries any number of 1024-byte
//! units (a multiple of 1024 bytes unless it is the last block) and its
//! NUM counts 1024-byte units, so the next block's NUM is this one's plus
//! the units it carried. nsh asks for that block with SZX 7 when the peer
//! announced BERT too, and otherwise with SZX 6 (1024 bytes, the same
//! NUM). nsh's own Block1 uploads stay at 1024 bytes at most, and a 2.31
//! Continue echoing SZX 7 over TCP reads as SZX 6 (its control usage).
//!
//! Sans-IO: nothing here sends or waits. Registering a follow-up request
//! (fresh message ID and token, same operation) is
//! [`super::Exchanges::send_next_block2`] and
//! [`super::Exchanges::send_next_notification_block2`].

use crate::coap::{BlockValue, CoapOption, Code, Message, OptionNumber};

/// The largest block number a Block option can carry (20 bits).
const MAX_NUM: u32 = (1 << 20) - 1;

/// The unit a BERT block's NUM counts and its payload is made of (RFC 8323
/// §6).
const BERT_UNIT: u32 = 1024;

/// SZX 6, the 1024-byte size a BERT option stands for in control usage.
const SZX_1024: u8 = 6;

/// Whether `block`, carried by `msg`, is a BERT option: SZX 7 over a
/// reliable transport (RFC 8323 §6). Over UDP, SZX 7 is reserved.
fn is_bert(block: BlockValue, msg: &Message) -> bool {
    block.is_reserved_szx() && msg.reliable
}

/// Why a Block2 body could not be assembled.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BlockError {
    /// A block starts somewhere other than where the body so far ends.
    #[error("Block2 block {num} of {size} bytes starts at byte {offset}, expected byte {expected}")]
    OutOfOrder {
        /// Its block number.
        num: u32,
        /// Its block size.
        size: u32,
        /// Where it starts (`num * size`).
        offset: u64,
        /// Where the body so far ends.
        expected: u64,
    },
    /// A block other than the last is shorter than the block size.
    #[error(
        "Block2 block {num} has {len} bytes, but more blocks follow and the block size is {size}"
    )]
    ShortBlock {
        /// Its block number.
        num: u32,
        /// Its payload length.
        len: usize,
        /// Its block size.
        size: u32,
    },
    /// The ETag of block `num` differs from the first block's: the
    /// resource changed.
    #[error("the ETag changed at block {num}: the resource changed during the Block2 transfer")]
    EtagChanged {
        /// The block whose ETag differs.
        num: u32,
    },
    /// A response after the first one carries no Block2 option.
    #[error("a response in the middle of a Block2 transfer has no Block2 option")]
    MissingBlock2,
    /// The body would exceed the size limit, or need more blocks than a
    /// Block option can number.
    #[error("the body exceeds {limit} bytes or 2^20 blocks")]
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// A block arrived after the last one.
    #[error("the block-wise transfer is already complete")]
    AlreadyComplete,
    /// The peer answered an error response instead of block `num`.
    #[error("answered {code} at block {num}")]
    ErrorResponse {
        /// The response code (class 4 or 5).
        code: Code,
        /// The block that was asked for (Block2) or sent (Block1).
        num: u32,
    },
    /// A Block1 or Block2 option received with SZX 7 over UDP or DTLS.
    #[error(
        "{option} has SZX 7, which is reserved over UDP and DTLS (RFC 7959 §2.2; it is BERT only over TCP and TLS, RFC 8323 §6); block sizes are {}",
        BlockValue::SIZES
    )]
    ReservedSzx {
        /// `Block1` or `Block2`.
        option: &'static str,
    },
    /// A BERT block (SZX 7 over TCP) with the more flag whose payload is
    /// not a whole, non-zero number of 1024-byte units (RFC 8323 §6).
    #[error(
        "{option} block {num} is a BERT block (SZX 7) of {len} bytes, but more blocks follow and a BERT block other than the last carries a multiple of 1024 bytes, at least 1024 (RFC 8323 §6)"
    )]
    BertShortBlock {
        /// `Block1` or `Block2`.
        option: &'static str,
        /// Its block number (in 1024-byte units).
        num: u32,
        /// Its payload length.
        len: usize,
    },
    /// A block size nsh does not send (not a power of two from 16 to
    /// 1024; 2048 would be the reserved SZX 7).
    #[error("{size} is not a block size: use {}", BlockValue::SIZES)]
    InvalidSize {
        /// The size asked for.
        size: u32,
    },
    /// A response other than 2.31 Continue to a Block1 block that is not
    /// the last one.
    #[error("block {num} answered {code} before the last block (expected 2.31 Continue)")]
    NotContinue {
        /// The response code.
        code: Code,
        /// The block sent.
        num: u32,
    },
    /// A 2.31 Continue to the last Block1 block (more = 0), which asks for
    /// a block that does not exist: the final response was due.
    #[error(
        "block {num} was the last and was answered 2.31 Continue; the final response (2.04 Changed, 2.01 Created) was due (RFC 7959 §2.3)"
    )]
    ContinueOnLast {
        /// The last block.
        num: u32,
    },
    /// A 2.31 Continue whose Block1 option does not acknowledge the block
    /// sent (RFC 7959 §2.3: it echoes its number and more flag).
    #[error("2.31 Continue to Block1 {sent} echoes {}", echoed.map_or_else(|| "no Block1 option".to_string(), |b| b.to_string()))]
    EchoMismatch {
        /// The block sent.
        sent: BlockValue,
        /// What the 2.31 carried.
        echoed: Option<BlockValue>,
    },
    /// A 2.31 Continue asking for a larger block size than the one in use
    /// (RFC 7959 §2.5 only lets the server ask for a smaller one).
    #[error(
        "2.31 Continue to block {num} asks for {asked}-byte blocks, larger than the {size} bytes in use"
    )]
    LargerSize {
        /// The block sent.
        num: u32,
        /// The size in use.
        size: u32,
        /// The size asked for.
        asked: u32,
    },
}

/// What to do after a block was accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockProgress {
    /// Ask for this block next.
    Next(BlockValue),
    /// The body is complete.
    Complete,
}

/// The Block2 value asking for the block after `response`'s (RFC 7959
/// §2.4): the next number in the response's block size, or for a BERT
/// block (RFC 8323 §6) the number after its last 1024-byte unit, with
/// SZX 7 when `peer_bert` (the peer announced BERT in its CSM) and SZX 6
/// otherwise. `None` when `response` has no Block2 option, its more flag
/// is clear, the next number does not fit, or the block is not one whose
/// successor can be asked for (SZX 7 over UDP, a BERT block that is not a
/// whole number of units).
fn next_block2(response: &Message, peer_bert: bool) -> Option<BlockValue> {
    let block = response.block2()?;
    if !block.more {
        return None;
    }
    let (units, szx) = if is_bert(block, response) {
        let len = response.payload.len();
        if len == 0 || !len.is_multiple_of(BERT_UNIT as usize) {
            return None;
        }
        let units = u32::try_from(len / BERT_UNIT as usize).ok()?;
        (units, if peer_bert { block.szx } else { SZX_1024 })
    } else if block.is_reserved_szx() {
        return None;
    } else {
        (1, block.szx)
    };
    let num = block.num.checked_add(units).filter(|&n| n <= MAX_NUM)?;
    Some(BlockValue {
        num,
        more: false,
        szx,
    })
}

/// Builds the request for the block after the one in `response`
/// (RFC 7959 §2.4): a copy of `request` with Block2 set to the next block
/// (the next number in the response's block size; after a BERT block, RFC
/// 8323 §6, the number after its last 1024-byte unit, asked for with
/// SZX 7 when `peer_bert`, the peer having announced BERT in its CSM, and
/// with SZX 6 otherwise), and without Observe (§2.6: only the first
/// request of an observation carries it). Message ID and token are copied
/// and should be replaced by the caller. `None` when `response` has no
/// Block2 option, its more flag is clear, or the next number does not fit.
/// A Block2 with the reserved SZX 7 (over UDP) has no next block either.
pub fn next_block2_request(
    request: &Message,
    response: &Message,
    peer_bert: bool,
) -> Option<Message> {
    let next = next_block2(response, peer_bert)?;
    let mut msg = request.clone();
    msg.remove_option(OptionNumber::OBSERVE);
    msg.set_option(CoapOption::new(OptionNumber::BLOCK2, next.encode()));
    Some(msg)
}

/// Checks a received message's Block1 and Block2 options with SZX 7: over
/// UDP it is reserved (RFC 7959 §2.2); over TCP it is BERT (RFC 8323 §6),
/// and a BERT block that describes a payload (Block1 in a request, Block2
/// in a response) with the more flag must carry a multiple of 1024 bytes.
/// The protocol error to report, if any. For responses that are not part
/// of a transfer [`Block2Assembly`] or [`Block1Upload`] already checks.
pub fn check_szx(msg: &Message) -> Result<(), BlockError> {
    let request = msg.code.is_request();
    for (option, block, descriptive) in [
        ("Block1", msg.block1(), request),
        ("Block2", msg.block2(), !request),
    ] {
        let Some(block) = block.filter(|b| b.is_reserved_szx()) else {
            continue;
        };
        if !msg.reliable {
            return Err(BlockError::ReservedSzx { option });
        }
        check_bert_payload(option, block, msg.payload.len(), descriptive)?;
    }
    Ok(())
}

/// A BERT block describing a payload of `len` bytes (`descriptive`) with
/// the more flag carries a whole, non-zero number of 1024-byte units (RFC
/// 8323 §6).
fn check_bert_payload(
    option: &'static str,
    block: BlockValue,
    len: usize,
    descriptive: bool,
) -> Result<(), BlockError> {
    if descriptive && block.more && (len == 0 || !len.is_multiple_of(BERT_UNIT as usize)) {
        return Err(BlockError::BertShortBlock {
            option,
            num: block.num,
            len,
        });
    }
    Ok(())
}

/// Builds the request for the second block of a block-wise notification
/// (RFC 7959 §2.6): the observer completes a notification whose Block2 has
/// the more flag with ordinary GET requests — a copy of the observation's
/// `request` without Observe, with Block2 set to block 1 in the
/// notification's size. Message ID and token are copied and must be
/// replaced by the caller (the token must not be the observation's: a
/// response without Observe on that token would end it); the blocks after
/// the second one come from [`next_block2_request`] with the same
/// `request`; a BERT notification (RFC 8323 §6) is completed as a BERT
/// response is (`peer_bert` as there). `Ok(None)` when the notification is
/// not block-wise (no Block2, or more flag clear); an error when its
/// Block2 is not block 0, has the reserved SZX 7 (over UDP), or is a BERT
/// block that is not a whole number of 1024-byte units.
pub fn next_notification_block2_request(
    request: &Message,
    notification: &Message,
    peer_bert: bool,
) -> Result<Option<Message>, BlockError> {
    let Some(block) = notification.block2() else {
        return Ok(None);
    };
    let bert = is_bert(block, notification);
    if block.is_reserved_szx() && !bert {
        return Err(BlockError::ReservedSzx { option: "Block2" });
    }
    if block.num != 0 {
        return Err(BlockError::OutOfOrder {
            num: block.num,
            size: block.size(),
            offset: u64::from(block.num) * u64::from(block.size()),
            expected: 0,
        });
    }
    if !block.more {
        return Ok(None);
    }
    if bert {
        check_bert_payload("Block2", block, notification.payload.len(), true)?;
    } else if notification.payload.len() != block.size() as usize {
        return Err(BlockError::ShortBlock {
            num: 0,
            len: notification.payload.len(),
            size: block.size(),
        });
    }
    Ok(next_block2_request(request, notification, peer_bert))
}

/// Reassembles a Block2 body from responses in order.
#[derive(Clone, Debug)]
pub struct Block2Assembly {
    body: Vec<u8>,
    etag: Option<Vec<u8>>,
    started: bool,
    complete: bool,
    limit: usize,
    /// The block asked for next (for error reports).
    next: u32,
}

impl Default for Block2Assembly {
    fn default() -> Self {
        Block2Assembly::new()
    }
}

impl Block2Assembly {
    /// The default body size limit: 16 MiB.
    pub const DEFAULT_LIMIT: usize = 16 << 20;

    /// An empty assembly with the default size limit.
    pub fn new() -> Self {
        Block2Assembly::with_limit(Self::DEFAULT_LIMIT)
    }

    /// An empty assembly refusing bodies larger than `limit` bytes.
    pub fn with_limit(limit: usize) -> Self {
        Block2Assembly {
            body: Vec::new(),
            etag: None,
            started: false,
            complete: false,
            limit,
            next: 0,
        }
    }

    /// Adds the payload of the next response. A first response without
    /// Block2 is the whole body. An error response (4.xx, 5.xx) instead of
    /// a block is [`BlockError::ErrorResponse`] with its code and the
    /// block asked for; a Block2 with SZX 7 is [`BlockError::ReservedSzx`]
    /// over UDP, and over TCP a BERT block (RFC 8323 §6): it starts at NUM
    /// times 1024 bytes, and unless it is the last it carries a whole,
    /// non-zero number of 1024-byte units
    /// ([`BlockError::BertShortBlock`]), the next block's NUM following
    /// its last unit.
    pub fn push(&mut self, response: &Message) -> Result<BlockProgress, BlockError> {
        if self.complete {
            return Err(BlockError::AlreadyComplete);
        }
        if response.code.is_error() {
            return Err(BlockError::ErrorResponse {
                code: response.code,
                num: self.next,
            });
        }
        let etag = response.option(OptionNumber::ETAG).map(|o| o.value.clone());
        let bert = response.block2().is_some_and(|b| is_bert(b, response));
        if response.block2().is_some_and(BlockValue::is_reserved_szx) && !bert {
            return Err(BlockError::ReservedSzx { option: "Block2" });
        }
        let Some(block) = response.block2() else {
            if self.started {
                return Err(BlockError::MissingBlock2);
            }
            self.append(&response.payload)?;
            self.complete = true;
            return Ok(BlockProgress::Complete);
        };
        // A BERT block's NUM counts 1024-byte units.
        let size = if bert { BERT_UNIT } else { block.size() };
        let offset = u64::from(block.num) * u64::from(size);
        let expected = self.body.len() as u64;
        if offset != expected {
            return Err(BlockError::OutOfOrder {
                num: block.num,
                size,
                offset,
                expected,
            });
        }
        if self.started && etag != self.etag {
            return Err(BlockError::EtagChanged { num: block.num });
        }
        if bert {
            check_bert_payload("Block2", block, response.payload.len(), true)?;
        } else if block.more && response.payload.len() != size as usize {
            return Err(BlockError::ShortBlock {
                num: block.num,
                len: response.payload.len(),
                size,
            });
        }
        // The block after this one, as the request for it asks (its SZX
        // aside, which depends on the peer).
        let next = if block.more {
            match next_block2(response, true) {
                Some(next) => Some(next),
                None => return Err(BlockError::TooLarge { limit: self.limit }),
            }
        } else {
            None
        };
        self.append(&response.payload)?;
        if !self.started {
            self.started = true;
            self.etag = etag;
        }
        if let Some(next) = next {
            self.next = next.num;
            Ok(BlockProgress::Next(next))
        } else {
            self.complete = true;
            Ok(BlockProgress::Complete)
        }
    }

    fn append(&mut self, payload: &[u8]) -> Result<(), BlockError> {
        if self.body.len().saturating_add(payload.len()) > self.limit {
            return Err(BlockError::TooLarge { limit: self.limit });
        }
        self.body.extend_from_slice(payload);
        Ok(())
    }

    /// Whether the last block arrived.
    pub fn is_complete(&self) -> bool {
        self.complete
    }

    /// The body so far.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// Takes the body.
    pub fn into_body(self) -> Vec<u8> {
        self.body
    }
}

/// What one block-wise transfer prints as it goes and where an error
/// stopped it, the same for every transfer: write_file's Block1 upload and
/// a Block2 read. With the body's size known, a line each time another
/// tenth of it is done (`LABEL: 40960/200000 bytes (20%), block 39`);
/// without (no Size2), a line every [`Progress::UNSIZED_EVERY`] blocks
/// (`LABEL: 65536 bytes, block 63`).
#[derive(Clone, Debug)]
pub struct Progress {
    label: String,
    /// `sent` or `received`, for [`Progress::at`].
    verb: &'static str,
    total: Option<usize>,
    /// The percentage the next line waits for.
    next_percent: usize,
    /// Blocks done, for the lines without a size.
    blocks: u32,
}

impl Progress {
    /// Blocks between two lines when the size is not known.
    pub const UNSIZED_EVERY: u32 = 64;

    /// The progress of a transfer whose lines start with `label`, of a body
    /// of `total` bytes if known, `sent` or `received` (`verb`).
    pub fn new(label: impl Into<String>, verb: &'static str, total: Option<usize>) -> Self {
        Progress {
            label: label.into(),
            verb,
            total,
            next_percent: 10,
            blocks: 0,
        }
    }

    /// The body's size, once known (a Size2 option).
    pub fn set_total(&mut self, total: usize) {
        self.total = Some(total);
    }

    /// The line to print after block `num` was done, `done` bytes of the
    /// body having been moved, if one is due.
    pub fn after(&mut self, num: u32, done: usize) -> Option<String> {
        self.blocks = self.blocks.saturating_add(1);
        match self.total {
            Some(total) if total > 0 => {
                let percent = done.saturating_mul(100) / total;
                if percent < self.next_percent {
                    return None;
                }
                self.next_percent = percent / 10 * 10 + 10;
                Some(format!(
                    "{}: {done}/{total} bytes ({percent}%), block {num}",
                    self.label
                ))
            }
            _ => self
                .blocks
                .is_multiple_of(Self::UNSIZED_EVERY)
                .then(|| format!("{}: {done} bytes, block {num}", self.label)),
        }
    }

    /// Where the transfer stands, for an error that stopped it at block
    /// `num` with `done` bytes moved: `at block 57 (58368 of 200000 bytes
    /// received)`.
    pub fn at(&self, num: u32, done: usize) -> String {
        format!("at block {num} ({})", self.moved(done))
    }

    /// How much was moved: `58368 of 200000 bytes received`.
    pub fn moved(&self, done: usize) -> String {
        match self.total {
            Some(total) => format!("{done} of {total} bytes {}", self.verb),
            None => format!("{done} bytes {}", self.verb),
        }
    }
}

/// The next Block1 request of a [`Block1Upload`]: what to put in the
/// request's Block1 (and Size1) option and payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Block1Request<'a> {
    /// The Block1 option value.
    pub block: BlockValue,
    /// The payload: the body from `offset`, `block.size()` bytes or what
    /// is left.
    pub payload: &'a [u8],
    /// Where the payload starts in the body.
    pub offset: usize,
    /// Size1 (the whole body's size, RFC 7959 §4), on the first request
    /// only.
    pub size1: Option<u64>,
}

/// What to do after a response to a Block1 block was accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Block1Progress {
    /// The block was acknowledged with 2.31 Continue: send
    /// [`Block1Upload::next_request`].
    Continue,
    /// The last block was answered: that response is the operation's.
    Complete,
}

/// A block-wise request body (RFC 7959 §2.3, §2.5), sans-IO: it yields each
/// request's Block1 value and payload and checks each response.
///
/// - The first block has the wanted size and carries Size1.
/// - A 2.31 Continue must echo the number and more flag of the block sent;
///   it may ask for a smaller size (§2.5), which the following blocks use
///   (their numbers count in the new size, so the transfer goes on at the
///   same byte); over TCP an echo with SZX 7 (BERT, RFC 8323 §6) stands
///   for 1024 bytes. A larger size, SZX 7 over UDP, a missing or different
///   echo, or any
///   other 2.xx before the last block is an error; so is an error response,
///   reported with its code and block number.
/// - The response to the last block ends the upload, whatever 2.xx it is
///   but 2.31 Continue, which would ask for a block that does not exist.
#[derive(Clone, Debug)]
pub struct Block1Upload {
    body: Vec<u8>,
    /// Bytes acknowledged so far: where the next block starts (a multiple
    /// of `size`, as sizes only shrink by powers of two).
    offset: usize,
    size: u32,
    complete: bool,
}

impl Block1Upload {
    /// An upload of `body` in blocks of `size` bytes: a power of two from
    /// 16 to 1024 ([`BlockError::InvalidSize`] otherwise, 2048 included),
    /// in at most 2^20 blocks ([`BlockError::TooLarge`]).
    pub fn new(body: Vec<u8>, size: u32) -> Result<Self, BlockError> {
        if !BlockValue::is_valid_size(size) {
            return Err(BlockError::InvalidSize { size });
        }
        check_block_count(body.len(), size)?;
        Ok(Block1Upload {
            body,
            offset: 0,
            size,
            complete: false,
        })
    }

    /// The request to send now; `None` once the last block was answered.
    /// It stays the same until [`Block1Upload::on_response`] accepts a
    /// response, so a retry sends the same block.
    pub fn next_request(&self) -> Option<Block1Request<'_>> {
        if self.complete {
            return None;
        }
        let end = self
            .offset
            .saturating_add(self.size as usize)
            .min(self.body.len());
        let block = self.block(end < self.body.len());
        Some(Block1Request {
            block,
            payload: self.body.get(self.offset..end).unwrap_or_default(),
            offset: self.offset,
            size1: (self.offset == 0).then_some(self.body.len() as u64),
        })
    }

    /// The block at `offset` in the current size. `new` and `on_response`
    /// keep the number within 20 bits.
    fn block(&self, more: bool) -> BlockValue {
        BlockValue {
            num: u32::try_from(self.offset / self.size as usize)
                .unwrap_or(MAX_NUM)
                .min(MAX_NUM),
            more,
            szx: (self.size.trailing_zeros().saturating_sub(4)) as u8,
        }
    }

    /// Checks the response to the block from [`Block1Upload::next_request`]
    /// and moves on.
    pub fn on_response(&mut self, response: &Message) -> Result<Block1Progress, BlockError> {
        let Some(sent) = self.next_request().map(|r| r.block) else {
            return Err(BlockError::AlreadyComplete);
        };
        if response.code.is_error() {
            return Err(BlockError::ErrorResponse {
                code: response.code,
                num: sent.num,
            });
        }
        if !sent.more && response.code == Code::CONTINUE {
            return Err(BlockError::ContinueOnLast { num: sent.num });
        }
        if !sent.more {
            self.offset = self.body.len();
            self.complete = true;
            return Ok(Block1Progress::Complete);
        }
        if response.code != Code::CONTINUE {
            return Err(BlockError::NotContinue {
                code: response.code,
                num: sent.num,
            });
        }
        let echoed = response.block1();
        let Some(mut echo) = echoed else {
            return Err(BlockError::EchoMismatch { sent, echoed });
        };
        if is_bert(echo, response) {
            // RFC 8323 §6: in control usage BERT stands for SZX 6, and
            // says the peer takes BERT blocks (nsh does not send them).
            echo.szx = SZX_1024;
        } else if echo.is_reserved_szx() {
            return Err(BlockError::ReservedSzx { option: "Block1" });
        }
        if echo.num != sent.num || echo.more != sent.more {
            return Err(BlockError::EchoMismatch { sent, echoed });
        }
        if echo.size() > self.size {
            return Err(BlockError::LargerSize {
                num: sent.num,
                size: self.size,
                asked: echo.size(),
            });
        }
        check_block_count(self.body.len(), echo.size())?;
        self.offset = self
            .offset
            .saturating_add(self.size as usize)
            .min(self.body.len());
        self.size = echo.size();
        Ok(Block1Progress::Continue)
    }

    /// The block size in use.
    pub fn size(&self) -> u32 {
        self.size
    }

    /// Bytes acknowledged so far.
    pub fn acknowledged(&self) -> usize {
        self.offset
    }

    /// The body's size.
    pub fn total(&self) -> usize {
        self.body.len()
    }

    /// Whether the last block was answered.
    pub fn is_complete(&self) -> bool {
        self.complete
    }
}

/// A body of `len` bytes fits in 2^20 blocks of `size`.
fn check_block_count(len: usize, size: u32) -> Result<(), BlockError> {
    let last = len.saturating_sub(1) / (size.max(1) as usize);
    if last > MAX_NUM as usize {
        let limit = (MAX_NUM as usize + 1).saturating_mul(size as usize);
        return Err(BlockError::TooLarge { limit });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coap::{Code, Type};

    fn get(path: &str) -> Message {
        let mut m = Message::new(Type::Confirmable, Code::GET, 10);
        m.token = vec![1, 2];
        m.set_uri(path);
        m
    }

    fn block_response(num: u32, more: bool, size: u32, payload: &[u8]) -> Message {
        let mut m = Message::new(Type::Acknowledgement, Code::CONTENT, 10);
        let b = BlockValue::new(num, more, size).expect("valid test block");
        m.add_option(CoapOption::new(OptionNumber::BLOCK2, b.encode()));
        m.payload = payload.to_vec();
        m
    }

    #[test]
    fn next_request_asks_for_the_following_block_in_the_response_size() {
        let mut req = get("/5/0/0");
        req.add_option(CoapOption::uint(OptionNumber::OBSERVE, 0));
        let resp = block_response(0, true, 64, &[0; 64]);
        let next = next_block2_request(&req, &resp, false).expect("more blocks");
        assert_eq!(next.block2(), BlockValue::new(1, false, 64));
        assert_eq!(next.path_string(), "/5/0/0");
        assert_eq!(
            next.observe(),
            None,
            "RFC 7959 §2.6: no Observe on follow-ups"
        );
        assert_eq!(next.code, Code::GET);
    }

    #[test]
    fn no_next_request_after_the_last_block_or_without_block2() {
        let req = get("/5/0/0");
        assert_eq!(
            next_block2_request(&req, &block_response(3, false, 64, b"x"), false),
            None
        );
        let plain = Message::new(Type::Acknowledgement, Code::CONTENT, 10);
        assert_eq!(next_block2_request(&req, &plain, false), None);
    }

    #[test]
    fn assembles_blocks_in_order() {
        let mut a = Block2Assembly::new();
        assert_eq!(
            a.push(&block_response(0, true, 16, &[1; 16])),
            Ok(BlockProgress::Next(BlockValue::new(1, false, 16).unwrap()))
        );
        assert_eq!(
            a.push(&block_response(1, false, 16, &[2; 3])),
            Ok(BlockProgress::Complete)
        );
        assert!(a.is_complete());
        assert_eq!(a.body().len(), 19);
        assert_eq!(
            a.push(&block_response(2, false, 16, &[])),
            Err(BlockError::AlreadyComplete)
        );
    }

    #[test]
    fn a_response_without_block2_is_the_whole_body() {
        let mut a = Block2Assembly::new();
        let mut m = Message::new(Type::Acknowledgement, Code::CONTENT, 1);
        m.payload = b"all".to_vec();
        assert_eq!(a.push(&m), Ok(BlockProgress::Complete));
        assert_eq!(a.into_body(), b"all");
    }

    #[test]
    fn rejects_a_skipped_block() {
        let mut a = Block2Assembly::new();
        a.push(&block_response(0, true, 16, &[1; 16])).unwrap();
        assert!(matches!(
            a.push(&block_response(2, true, 16, &[1; 16])),
            Err(BlockError::OutOfOrder {
                expected: 16,
                offset: 32,
                ..
            })
        ));
    }

    #[test]
    fn accepts_a_smaller_block_size_at_the_right_offset() {
        let mut a = Block2Assembly::new();
        a.push(&block_response(0, true, 64, &[1; 64])).unwrap();
        assert_eq!(
            a.push(&block_response(2, false, 32, &[2; 5])),
            Ok(BlockProgress::Complete)
        );
    }

    #[test]
    fn rejects_a_short_block_that_is_not_the_last() {
        let mut a = Block2Assembly::new();
        assert!(matches!(
            a.push(&block_response(0, true, 16, &[1; 10])),
            Err(BlockError::ShortBlock { len: 10, .. })
        ));
    }

    #[test]
    fn rejects_a_changed_etag() {
        let mut a = Block2Assembly::new();
        let mut first = block_response(0, true, 16, &[1; 16]);
        first.add_option(CoapOption::new(OptionNumber::ETAG, b"v1".to_vec()));
        a.push(&first).unwrap();
        let mut second = block_response(1, false, 16, &[1; 2]);
        second.add_option(CoapOption::new(OptionNumber::ETAG, b"v2".to_vec()));
        let err = a.push(&second).unwrap_err();
        assert_eq!(err, BlockError::EtagChanged { num: 1 });
        assert!(err.to_string().contains("at block 1"), "{err}");
    }

    fn error_response(code: Code) -> Message {
        Message::new(Type::Acknowledgement, code, 10)
    }

    #[test]
    fn an_error_response_in_the_middle_is_reported_with_its_code_and_block() {
        let mut a = Block2Assembly::new();
        for num in 0..3 {
            a.push(&block_response(num, true, 16, &[1; 16])).unwrap();
        }
        let e = a.push(&error_response(Code::NOT_FOUND)).unwrap_err();
        assert_eq!(
            e,
            BlockError::ErrorResponse {
                code: Code::NOT_FOUND,
                num: 3
            }
        );
        assert_eq!(e.to_string(), "answered 4.04 (RES_NOT_FOUND) at block 3");
    }

    #[test]
    fn an_error_response_first_is_reported_at_block_0() {
        let mut a = Block2Assembly::new();
        assert_eq!(
            a.push(&error_response(Code::INTERNAL_SERVER_ERROR)),
            Err(BlockError::ErrorResponse {
                code: Code::INTERNAL_SERVER_ERROR,
                num: 0
            })
        );
    }

    /// A Block2 option with SZX 7 (raw value 0x0f: NUM 0, M 1, SZX 7).
    fn szx7_response() -> Message {
        let mut m = Message::new(Type::Acknowledgement, Code::CONTENT, 10);
        m.add_option(CoapOption::new(OptionNumber::BLOCK2, vec![0x0f]));
        m.payload = vec![0; 2048];
        m
    }

    #[test]
    fn a_block2_with_szx_7_is_refused_not_used_over_udp() {
        // RFC 7959 §2.2: reserved over UDP (BERT only over TCP).
        let mut a = Block2Assembly::new();
        let e = a.push(&szx7_response()).unwrap_err();
        assert_eq!(e, BlockError::ReservedSzx { option: "Block2" });
        assert!(e.to_string().contains("16, 32, 64, 128, 256, 512 or 1024"));
        assert_eq!(
            next_block2_request(&get("/5/0/0"), &szx7_response(), true),
            None
        );
    }

    #[test]
    fn check_szx_names_the_option_with_szx_7() {
        assert_eq!(check_szx(&block_response(0, false, 1024, b"x")), Ok(()));
        assert_eq!(
            check_szx(&szx7_response()),
            Err(BlockError::ReservedSzx { option: "Block2" })
        );
        let mut m = Message::new(Type::Acknowledgement, Code::CHANGED, 1);
        m.add_option(CoapOption::new(OptionNumber::BLOCK1, vec![0x27]));
        assert_eq!(
            check_szx(&m),
            Err(BlockError::ReservedSzx { option: "Block1" })
        );
    }

    /// A Block2 response over TCP with SZX 7 (BERT, RFC 8323 §6): NUM
    /// `num` in 1024-byte units, `len` bytes.
    fn bert_response(num: u32, more: bool, len: usize) -> Message {
        let mut m = Message::new(Type::Confirmable, Code::CONTENT, 0);
        m.reliable = true;
        let b = BlockValue {
            num,
            more,
            szx: BlockValue::RESERVED_SZX,
        };
        m.add_option(CoapOption::new(OptionNumber::BLOCK2, b.encode()));
        m.payload = (0..len).map(|i| (i % 251) as u8).collect();
        m
    }

    fn bert(num: u32) -> BlockValue {
        BlockValue {
            num,
            more: false,
            szx: BlockValue::RESERVED_SZX,
        }
    }

    #[test]
    fn bert_blocks_over_tcp_are_assembled_counting_1024_byte_units() {
        // RFC 8323 §6, figure 15: 2:0/1/BERT (3072 bytes), 2:3/1/BERT (5120
        // bytes), 2:8/0/BERT (4711 bytes).
        let mut a = Block2Assembly::new();
        assert_eq!(
            a.push(&bert_response(0, true, 3072)),
            Ok(BlockProgress::Next(bert(3)))
        );
        assert_eq!(
            a.push(&bert_response(3, true, 5120)),
            Ok(BlockProgress::Next(bert(8)))
        );
        assert_eq!(
            a.push(&bert_response(8, false, 4711)),
            Ok(BlockProgress::Complete)
        );
        assert_eq!(a.body().len(), 3072 + 5120 + 4711);
        // A BERT block in the wrong place is out of order, in bytes.
        let mut a = Block2Assembly::new();
        a.push(&bert_response(0, true, 2048)).unwrap();
        assert!(matches!(
            a.push(&bert_response(3, false, 10)),
            Err(BlockError::OutOfOrder {
                offset: 3072,
                expected: 2048,
                ..
            })
        ));
        // The peer may go on in 1024-byte blocks: NUM counts the same.
        let mut a = Block2Assembly::new();
        a.push(&bert_response(0, true, 2048)).unwrap();
        assert_eq!(
            a.push(&block_response(2, false, 1024, &[1; 7])),
            Ok(BlockProgress::Complete)
        );
    }

    #[test]
    fn a_bert_block_before_the_last_is_a_whole_number_of_1024_byte_units() {
        for len in [0, 1000, 3000] {
            let mut a = Block2Assembly::new();
            let e = a.push(&bert_response(0, true, len)).unwrap_err();
            assert_eq!(
                e,
                BlockError::BertShortBlock {
                    option: "Block2",
                    num: 0,
                    len
                }
            );
            assert!(e.to_string().contains("multiple of 1024"), "{e}");
            assert_eq!(
                next_block2_request(&get("/5/0/0"), &bert_response(0, true, len), true),
                None
            );
        }
        // The last one may be of any length, none included.
        let mut a = Block2Assembly::new();
        a.push(&bert_response(0, true, 1024)).unwrap();
        assert_eq!(
            a.push(&bert_response(1, false, 0)),
            Ok(BlockProgress::Complete)
        );
    }

    #[test]
    fn after_a_bert_block_the_next_is_asked_for_with_szx_7_only_from_a_bert_peer() {
        let req = get("/5/0/0");
        let resp = bert_response(0, true, 64512);
        let next = next_block2_request(&req, &resp, true).expect("more blocks");
        assert_eq!(next.block2(), Some(bert(63)));
        // A peer that did not announce BERT is not sent SZX 7: the same
        // byte, asked for in 1024-byte blocks.
        let next = next_block2_request(&req, &resp, false).expect("more blocks");
        assert_eq!(next.block2(), BlockValue::new(63, false, 1024));
        // Over UDP, SZX 7 is reserved whatever the peer.
        let mut udp = resp.clone();
        udp.reliable = false;
        assert_eq!(next_block2_request(&req, &udp, true), None);
        // NUM stays within 20 bits.
        assert_eq!(
            next_block2_request(&req, &bert_response((1 << 20) - 2, true, 2048), true),
            None
        );
        // And the body within its limit.
        let mut a = Block2Assembly::with_limit(4096);
        assert_eq!(
            a.push(&bert_response(0, true, 8192)),
            Err(BlockError::TooLarge { limit: 4096 })
        );
    }

    #[test]
    fn check_szx_takes_well_formed_bert_over_tcp_only() {
        assert_eq!(check_szx(&bert_response(0, true, 2048)), Ok(()));
        assert_eq!(check_szx(&bert_response(2, false, 5)), Ok(()));
        assert_eq!(
            check_szx(&bert_response(0, true, 1500)),
            Err(BlockError::BertShortBlock {
                option: "Block2",
                num: 0,
                len: 1500
            })
        );
        // A Block1 request from a client (descriptive usage).
        let mut put = Message::new(Type::Confirmable, Code::PUT, 0);
        put.reliable = true;
        put.add_option(CoapOption::new(OptionNumber::BLOCK1, vec![0x0f]));
        put.payload = vec![0; 4096];
        assert_eq!(check_szx(&put), Ok(()));
        put.payload = vec![0; 100];
        assert_eq!(
            check_szx(&put),
            Err(BlockError::BertShortBlock {
                option: "Block1",
                num: 0,
                len: 100
            })
        );
        // Control usage (Block2 in a request) carries no payload to check.
        let mut ask = get("/5/0/0");
        ask.reliable = true;
        ask.add_option(CoapOption::new(OptionNumber::BLOCK2, bert(3).encode()));
        assert_eq!(check_szx(&ask), Ok(()));
        ask.reliable = false;
        assert_eq!(
            check_szx(&ask),
            Err(BlockError::ReservedSzx { option: "Block2" })
        );
    }

    #[test]
    fn a_bert_notification_is_completed_after_its_last_unit() {
        let mut req = get("/3/0");
        req.add_option(CoapOption::uint(OptionNumber::OBSERVE, 0));
        let mut n = bert_response(0, true, 4096);
        n.add_option(CoapOption::uint(OptionNumber::OBSERVE, 12));
        let next = next_notification_block2_request(&req, &n, true)
            .unwrap()
            .expect("a second block");
        assert_eq!(next.block2(), Some(bert(4)));
        assert_eq!(next.observe(), None);
        n.payload.truncate(4000);
        assert!(matches!(
            next_notification_block2_request(&req, &n, true),
            Err(BlockError::BertShortBlock { len: 4000, .. })
        ));
    }

    #[test]
    fn block1_upload_over_tcp_reads_a_bert_echo_as_1024_bytes() {
        let mut u = Block1Upload::new(vec![1; 3000], 1024).unwrap();
        let mut m = continue_(0, true, 1024);
        m.reliable = true;
        m.set_option(CoapOption::new(OptionNumber::BLOCK1, vec![0x0f]));
        assert_eq!(u.on_response(&m), Ok(Block1Progress::Continue));
        assert_eq!(u.size(), 1024);
        assert_eq!(
            step(&u),
            (BlockValue::new(1, true, 1024).unwrap(), 1024, None)
        );
        // Larger than 512-byte blocks, as SZX 6 would be.
        let mut u = Block1Upload::new(vec![1; 3000], 512).unwrap();
        assert!(matches!(
            u.on_response(&m),
            Err(BlockError::LargerSize { asked: 1024, .. })
        ));
    }

    fn notification(num: u32, more: bool, size: u32, len: usize) -> Message {
        let mut m = block_response(num, more, size, &vec![7; len]);
        m.mtype = Type::NonConfirmable;
        m.add_option(CoapOption::uint(OptionNumber::OBSERVE, 12));
        m
    }

    #[test]
    fn a_block_wise_notification_is_completed_with_a_get_without_observe() {
        // RFC 7959 §2.6.
        let mut req = get("/3/0");
        req.add_option(CoapOption::uint(OptionNumber::OBSERVE, 0));
        req.add_option(CoapOption::uint(OptionNumber::ACCEPT, 11542));
        let next = next_notification_block2_request(&req, &notification(0, true, 64, 64), false)
            .unwrap()
            .expect("a second block");
        assert_eq!(next.code, Code::GET);
        assert_eq!(next.observe(), None);
        assert_eq!(next.path_string(), "/3/0");
        assert_eq!(next.uint_option(OptionNumber::ACCEPT), Some(11542));
        assert_eq!(next.block2(), BlockValue::new(1, false, 64));
        // The third block follows from the second block's response.
        let third =
            next_block2_request(&req, &block_response(1, true, 64, &[0; 64]), false).unwrap();
        assert_eq!(third.block2(), BlockValue::new(2, false, 64));
        assert_eq!(third.observe(), None);
    }

    #[test]
    fn a_whole_notification_needs_no_follow_up() {
        let req = get("/3/0");
        assert_eq!(
            next_notification_block2_request(&req, &notification(0, false, 64, 10), false),
            Ok(None)
        );
        let mut plain = Message::new(Type::NonConfirmable, Code::CONTENT, 3);
        plain.add_option(CoapOption::uint(OptionNumber::OBSERVE, 12));
        assert_eq!(
            next_notification_block2_request(&req, &plain, false),
            Ok(None)
        );
    }

    #[test]
    fn a_notification_block_other_than_0_or_with_szx_7_is_an_error() {
        let req = get("/3/0");
        assert!(matches!(
            next_notification_block2_request(&req, &notification(2, true, 64, 64), false),
            Err(BlockError::OutOfOrder { num: 2, .. })
        ));
        assert!(matches!(
            next_notification_block2_request(&req, &notification(0, true, 64, 10), false),
            Err(BlockError::ShortBlock { len: 10, .. })
        ));
        assert_eq!(
            next_notification_block2_request(&req, &szx7_response(), true),
            Err(BlockError::ReservedSzx { option: "Block2" })
        );
    }

    // ------------------------------------------------------------ Block1

    /// The 2.31 Continue a peer sends for `block`, echoing it in `size`.
    fn continue_(num: u32, more: bool, size: u32) -> Message {
        let mut m = Message::new(Type::Acknowledgement, Code::CONTINUE, 10);
        let b = BlockValue::new(num, more, size).expect("valid test block");
        m.add_option(CoapOption::new(OptionNumber::BLOCK1, b.encode()));
        m
    }

    fn changed() -> Message {
        Message::new(Type::Acknowledgement, Code::CHANGED, 10)
    }

    /// (block, payload length, size1) of the next request.
    fn step(u: &Block1Upload) -> (BlockValue, usize, Option<u64>) {
        let r = u.next_request().expect("a request");
        (r.block, r.payload.len(), r.size1)
    }

    #[test]
    fn block1_upload_sends_every_block_with_size1_on_the_first() {
        let body: Vec<u8> = (0..40u8).collect();
        let mut u = Block1Upload::new(body.clone(), 16).unwrap();
        assert_eq!(
            step(&u),
            (BlockValue::new(0, true, 16).unwrap(), 16, Some(40))
        );
        assert_eq!(
            u.on_response(&continue_(0, true, 16)),
            Ok(Block1Progress::Continue)
        );
        assert_eq!(step(&u), (BlockValue::new(1, true, 16).unwrap(), 16, None));
        assert_eq!(
            u.on_response(&continue_(1, true, 16)),
            Ok(Block1Progress::Continue)
        );
        let last = u.next_request().unwrap();
        assert_eq!(
            (last.block, last.offset, last.payload),
            (BlockValue::new(2, false, 16).unwrap(), 32, &body[32..])
        );
        assert_eq!(u.on_response(&changed()), Ok(Block1Progress::Complete));
        assert!(u.is_complete());
        assert_eq!(u.next_request(), None);
        assert_eq!(u.acknowledged(), 40);
        assert_eq!(u.on_response(&changed()), Err(BlockError::AlreadyComplete));
    }

    /// A peer that answers every block 2.31 Continue never ends the
    /// upload: the last block's 2.31 is an error, not its success.
    #[test]
    fn a_continue_to_the_last_block1_block_is_an_error() {
        let mut u = Block1Upload::new(vec![7; 20], 16).unwrap();
        assert_eq!(
            u.on_response(&continue_(0, true, 16)),
            Ok(Block1Progress::Continue)
        );
        assert_eq!(
            u.on_response(&continue_(1, false, 16)),
            Err(BlockError::ContinueOnLast { num: 1 })
        );
        assert!(!u.is_complete());
    }

    #[test]
    fn block1_upload_of_an_empty_body_is_one_empty_block() {
        let mut u = Block1Upload::new(Vec::new(), 1024).unwrap();
        assert_eq!(
            step(&u),
            (BlockValue::new(0, false, 1024).unwrap(), 0, Some(0))
        );
        assert_eq!(u.on_response(&changed()), Ok(Block1Progress::Complete));
    }

    #[test]
    fn block1_upload_follows_a_smaller_size_at_the_same_byte() {
        // RFC 7959 §2.5, figure 6: 1:0/1/128 answered 1:0/1/32, then 1:4/1/32.
        let mut u = Block1Upload::new(vec![1; 300], 128).unwrap();
        assert_eq!(
            u.on_response(&continue_(0, true, 32)),
            Ok(Block1Progress::Continue)
        );
        assert_eq!(u.size(), 32);
        assert_eq!(step(&u), (BlockValue::new(4, true, 32).unwrap(), 32, None));
        // And again later, to 16: byte 160 is block 10 of 16.
        assert_eq!(
            u.on_response(&continue_(4, true, 16)),
            Ok(Block1Progress::Continue)
        );
        assert_eq!(step(&u), (BlockValue::new(10, true, 16).unwrap(), 16, None));
    }

    #[test]
    fn block1_upload_refuses_szx_7_and_sizes_that_are_not_block_sizes() {
        for size in [2048, 4096, 100, 8, 0] {
            let e = Block1Upload::new(vec![1; 10], size).unwrap_err();
            assert_eq!(e, BlockError::InvalidSize { size });
            assert!(
                e.to_string().contains("16, 32, 64, 128, 256, 512 or 1024"),
                "{e}"
            );
        }
    }

    #[test]
    fn block1_upload_rejects_a_continue_that_echoes_another_block() {
        let sent = BlockValue::new(0, true, 64).unwrap();
        let mut wrong_num = Block1Upload::new(vec![1; 200], 64).unwrap();
        assert_eq!(
            wrong_num.on_response(&continue_(1, true, 64)),
            Err(BlockError::EchoMismatch {
                sent,
                echoed: BlockValue::new(1, true, 64)
            })
        );
        let mut wrong_more = Block1Upload::new(vec![1; 200], 64).unwrap();
        assert!(matches!(
            wrong_more.on_response(&continue_(0, false, 64)),
            Err(BlockError::EchoMismatch { .. })
        ));
        let mut none = Block1Upload::new(vec![1; 200], 64).unwrap();
        let mut bare = continue_(0, true, 64);
        bare.remove_option(OptionNumber::BLOCK1);
        let e = none.on_response(&bare).unwrap_err();
        assert_eq!(e, BlockError::EchoMismatch { sent, echoed: None });
        assert_eq!(
            e.to_string(),
            "2.31 Continue to Block1 seq_num=0, has_more=1, block_size=64 echoes no Block1 option"
        );
        // Nothing moved: the same block is still the one to send.
        assert_eq!(step(&none).0, sent);
    }

    #[test]
    fn block1_upload_rejects_a_larger_size_or_szx_7_in_a_continue() {
        let mut u = Block1Upload::new(vec![1; 200], 64).unwrap();
        assert_eq!(
            u.on_response(&continue_(0, true, 128)),
            Err(BlockError::LargerSize {
                num: 0,
                size: 64,
                asked: 128
            })
        );
        let mut m = continue_(0, true, 64);
        m.set_option(CoapOption::new(OptionNumber::BLOCK1, vec![0x0f]));
        assert_eq!(
            u.on_response(&m),
            Err(BlockError::ReservedSzx { option: "Block1" })
        );
    }

    #[test]
    fn block1_upload_reports_an_error_or_a_final_code_before_the_last_block() {
        let mut u = Block1Upload::new(vec![1; 200], 64).unwrap();
        u.on_response(&continue_(0, true, 64)).unwrap();
        let e = u
            .on_response(&error_response(Code::REQUEST_ENTITY_TOO_LARGE))
            .unwrap_err();
        assert_eq!(
            e,
            BlockError::ErrorResponse {
                code: Code::REQUEST_ENTITY_TOO_LARGE,
                num: 1
            }
        );
        assert_eq!(
            u.on_response(&changed()),
            Err(BlockError::NotContinue {
                code: Code::CHANGED,
                num: 1
            })
        );
    }

    #[test]
    fn block1_upload_refuses_more_than_2_pow_20_blocks() {
        let body = vec![0; (1 << 20) * 16 + 1];
        assert!(matches!(
            Block1Upload::new(body.clone(), 16),
            Err(BlockError::TooLarge { .. })
        ));
        // Fits in 32-byte blocks, but not once the peer asks for 16.
        let mut u = Block1Upload::new(body, 32).unwrap();
        assert!(matches!(
            u.on_response(&continue_(0, true, 16)),
            Err(BlockError::TooLarge { .. })
        ));
    }

    proptest::proptest! {
        /// Whatever the peer answers, nothing panics, no block with SZX 7
        /// is ever asked for of a peer that did not announce BERT (nor over
        /// UDP), none over the size is, and Block1 payloads stay inside
        /// the body.
        #[test]
        fn block_wise_state_never_panics_on_arbitrary_responses(
            len in 0usize..3000,
            size_exp in 0u32..8,
            steps in proptest::collection::vec(
                (
                    proptest::prelude::any::<u8>(),
                    proptest::option::of(proptest::collection::vec(proptest::prelude::any::<u8>(), 0..5)),
                    proptest::option::of(proptest::collection::vec(proptest::prelude::any::<u8>(), 0..5)),
                    0usize..1100,
                ),
                1..40,
            ),
            reliable in proptest::prelude::any::<bool>(),
        ) {
            let size = 16u32 << size_exp;
            let mut upload = Block1Upload::new(vec![0; len], size).ok();
            proptest::prop_assert_eq!(upload.is_some(), size <= 1024);
            let mut assembly = Block2Assembly::with_limit(4096);
            let req = get("/5/0/0");
            for (code, block1, block2, payload) in steps {
                let mut m = Message::new(Type::Acknowledgement, Code(code), 1);
                if let Some(v) = block1 {
                    m.add_option(CoapOption::new(OptionNumber::BLOCK1, v));
                }
                if let Some(v) = block2 {
                    m.add_option(CoapOption::new(OptionNumber::BLOCK2, v));
                }
                m.payload = vec![1; payload];
                m.reliable = reliable;
                if let Some(u) = upload.as_mut() {
                    if let Some(r) = u.next_request() {
                        proptest::prop_assert!(!r.block.is_reserved_szx());
                        proptest::prop_assert!(r.payload.len() <= r.block.size() as usize);
                        proptest::prop_assert!(r.offset + r.payload.len() <= len);
                        proptest::prop_assert!(r.block.size() <= size);
                    }
                    let _ = u.on_response(&m);
                }
                let _ = assembly.push(&m);
                proptest::prop_assert!(assembly.body().len() <= 4096);
                // SZX 7 is asked for only over TCP from a BERT peer.
                for next in [
                    next_block2_request(&req, &m, false),
                    next_notification_block2_request(&req, &m, false).ok().flatten(),
                ]
                .into_iter()
                .flatten()
                {
                    proptest::prop_assert!(next.block2().is_some_and(|b| !b.is_reserved_szx()));
                }
                if !reliable {
                    proptest::prop_assert!(
                        next_block2_request(&req, &m, true).is_none_or(|n| n.block2().is_some_and(|b| !b.is_reserved_szx()))
                    );
                }
            }
        }
    }

    #[test]
    fn rejects_a_body_over_the_limit() {
        let mut a = Block2Assembly::with_limit(20);
        a.push(&block_response(0, true, 16, &[1; 16])).unwrap();
        assert_eq!(
            a.push(&block_response(1, true, 16, &[1; 16])),
            Err(BlockError::TooLarge { limit: 20 })
        );
    }

    #[test]
    fn progress_is_a_line_each_tenth_with_the_block_or_every_64_blocks_unsized() {
        let mut p = Progress::new("Read /5/0/0", "received", None);
        p.set_total(10_000);
        let lines: Vec<String> = (0..10u32)
            .filter_map(|num| p.after(num, (num as usize + 1) * 1000))
            .collect();
        assert_eq!(lines.len(), 10);
        assert_eq!(lines[1], "Read /5/0/0: 2000/10000 bytes (20%), block 1");
        assert_eq!(p.at(4, 4000), "at block 4 (4000 of 10000 bytes received)");
        // Several tenths at once give one line.
        let mut p = Progress::new("write_file", "sent", Some(100));
        assert_eq!(p.after(0, 5), None);
        assert_eq!(
            p.after(1, 35).as_deref(),
            Some("write_file: 35/100 bytes (35%), block 1")
        );
        assert_eq!(p.after(2, 39), None);
        assert!(p.after(3, 40).is_some());
        // Without a size: every 64 blocks.
        let mut p = Progress::new("Read /x", "received", None);
        let lines: Vec<String> = (0..130u32)
            .filter_map(|n| p.after(n, (n as usize + 1) * 16))
            .collect();
        assert_eq!(
            lines,
            [
                "Read /x: 1024 bytes, block 63",
                "Read /x: 2048 bytes, block 127"
            ]
        );
        assert_eq!(p.at(130, 2096), "at block 130 (2096 bytes received)");
    }
}
