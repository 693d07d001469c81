//! Block-wise transfers (RFC 7959), the parts a server needs: reading a
//! large resource or notification with Block2 (building the request for
//! the next block, reassembling the body while checking that blocks arrive
//! in order, are full-sized and come from one representation (ETag), and
//! that the peer did not answer an error instead), and writing a large
//! body with Block1 ([`Block1Upload`]: which block to send next, following
//! a smaller size the peer asks for, checking what each 2.31 echoes);
//! and the progress lines and positions both print ([`Progress`]).
//!
//! SZX 7 is never sent and never accepted: it is reserved over UDP
//! (RFC 7959 §2.2) and means BERT over TCP (RFC 8323 §6), which nsh does
//! not negotiate (no BERT in its CSM), so it is an error there as well.
//!
//! Sans-IO: nothing here sends or waits. Registering a follow-up request
//! (fresh message ID and token, same operation) is
//! [`super::Exchanges::send_next_block2`] and
//! [`super::Exchanges::send_next_notification_block2`].

use crate::coap::{BlockValue, CoapOption, Code, Message, OptionNumber};

/// The largest block number a Block option can carry (20 bits).
const MAX_NUM: u32 = (1 << 20) - 1;

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
    /// A Block1 or Block2 option received with SZX 7.
    #[error(
        "{option} has SZX 7, which is reserved (RFC 7959 §2.2; BERT over TCP, which nsh does not negotiate); block sizes are {}",
        BlockValue::SIZES
    )]
    ReservedSzx {
        /// `Block1` or `Block2`.
        option: &'static str,
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

/// Builds the request for the block after the one in `response`
/// (RFC 7959 §2.4): a copy of `request` with Block2 set to the next number
/// in the response's block size, and without Observe (§2.6: only the first
/// request of an observation carries it). Message ID and token are copied
/// and should be replaced by the caller. `None` when `response` has no
/// Block2 option, its more flag is clear, or the next number does not fit.
/// A Block2 with the reserved SZX 7 has no next block either.
pub fn next_block2_request(request: &Message, response: &Message) -> Option<Message> {
    let block = response.block2()?;
    if !block.more || block.num >= MAX_NUM || block.is_reserved_szx() {
        return None;
    }
    let next = BlockValue {
        num: block.num + 1,
        more: false,
        szx: block.szx,
    };
    let mut msg = request.clone();
    msg.remove_option(OptionNumber::OBSERVE);
    msg.set_option(CoapOption::new(OptionNumber::BLOCK2, next.encode()));
    Some(msg)
}

/// Checks a received message's Block1 and Block2 options for the reserved
/// SZX 7 (RFC 7959 §2.2; BERT over TCP, not negotiated by nsh): the
/// protocol error to report, if any. For responses that are not part of a
/// transfer [`Block2Assembly`] or [`Block1Upload`] already checks.
pub fn check_szx(msg: &Message) -> Result<(), BlockError> {
    if msg.block1().is_some_and(BlockValue::is_reserved_szx) {
        return Err(BlockError::ReservedSzx { option: "Block1" });
    }
    if msg.block2().is_some_and(BlockValue::is_reserved_szx) {
        return Err(BlockError::ReservedSzx { option: "Block2" });
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
/// `request`. `Ok(None)` when the notification is not block-wise (no
/// Block2, or more flag clear); an error when its Block2 is not block 0 or
/// has the reserved SZX 7.
pub fn next_notification_block2_request(
    request: &Message,
    notification: &Message,
) -> Result<Option<Message>, BlockError> {
    let Some(block) = notification.block2() else {
        return Ok(None);
    };
    if block.is_reserved_szx() {
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
    if notification.payload.len() != block.size() as usize {
        return Err(BlockError::ShortBlock {
            num: 0,
            len: notification.payload.len(),
            size: block.size(),
        });
    }
    Ok(next_block2_request(request, notification))
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
    /// block asked for; a Block2 with SZX 7 is
    /// [`BlockError::ReservedSzx`].
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
        if response.block2().is_some_and(BlockValue::is_reserved_szx) {
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
        let size = block.size();
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
        if block.more && response.payload.len() != size as usize {
            return Err(BlockError::ShortBlock {
                num: block.num,
                len: response.payload.len(),
                size,
            });
        }
        if block.more && block.num >= MAX_NUM {
            return Err(BlockError::TooLarge { limit: self.limit });
        }
        self.append(&response.payload)?;
        if !self.started {
            self.started = true;
            self.etag = etag;
        }
        if block.more {
            self.next = block.num + 1;
            Ok(BlockProgress::Next(BlockValue {
                num: block.num + 1,
                more: false,
                szx: block.szx,
            }))
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
///   same byte). A larger size, SZX 7, a missing or different echo, or any
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
        let Some(echo) = echoed else {
            return Err(BlockError::EchoMismatch { sent, echoed });
        };
        if echo.is_reserved_szx() {
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
        let next = next_block2_request(&req, &resp).expect("more blocks");
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
            next_block2_request(&req, &block_response(3, false, 64, b"x")),
            None
        );
        let plain = Message::new(Type::Acknowledgement, Code::CONTENT, 10);
        assert_eq!(next_block2_request(&req, &plain), None);
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
    fn a_block2_with_szx_7_is_refused_not_used() {
        // RFC 7959 §2.2: reserved over UDP; BERT over TCP is not negotiated.
        let mut a = Block2Assembly::new();
        let e = a.push(&szx7_response()).unwrap_err();
        assert_eq!(e, BlockError::ReservedSzx { option: "Block2" });
        assert!(e.to_string().contains("16, 32, 64, 128, 256, 512 or 1024"));
        assert_eq!(next_block2_request(&get("/5/0/0"), &szx7_response()), None);
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
        let next = next_notification_block2_request(&req, &notification(0, true, 64, 64))
            .unwrap()
            .expect("a second block");
        assert_eq!(next.code, Code::GET);
        assert_eq!(next.observe(), None);
        assert_eq!(next.path_string(), "/3/0");
        assert_eq!(next.uint_option(OptionNumber::ACCEPT), Some(11542));
        assert_eq!(next.block2(), BlockValue::new(1, false, 64));
        // The third block follows from the second block's response.
        let third = next_block2_request(&req, &block_response(1, true, 64, &[0; 64])).unwrap();
        assert_eq!(third.block2(), BlockValue::new(2, false, 64));
        assert_eq!(third.observe(), None);
    }

    #[test]
    fn a_whole_notification_needs_no_follow_up() {
        let req = get("/3/0");
        assert_eq!(
            next_notification_block2_request(&req, &notification(0, false, 64, 10)),
            Ok(None)
        );
        let mut plain = Message::new(Type::NonConfirmable, Code::CONTENT, 3);
        plain.add_option(CoapOption::uint(OptionNumber::OBSERVE, 12));
        assert_eq!(next_notification_block2_request(&req, &plain), Ok(None));
    }

    #[test]
    fn a_notification_block_other_than_0_or_with_szx_7_is_an_error() {
        let req = get("/3/0");
        assert!(matches!(
            next_notification_block2_request(&req, &notification(2, true, 64, 64)),
            Err(BlockError::OutOfOrder { num: 2, .. })
        ));
        assert!(matches!(
            next_notification_block2_request(&req, &notification(0, true, 64, 10)),
            Err(BlockError::ShortBlock { len: 10, .. })
        ));
        assert_eq!(
            next_notification_block2_request(&req, &szx7_response()),
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
        /// or over the size is ever asked for, and Block1 payloads stay
        /// inside the body.
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
                for next in [
                    next_block2_request(&req, &m),
                    next_notification_block2_request(&req, &m).ok().flatten(),
                ]
                .into_iter()
                .flatten()
                {
                    proptest::prop_assert!(next.block2().is_some_and(|b| !b.is_reserved_szx()));
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
