//! Block-wise transfers (RFC 7959), the part a server needs to read a large
//! resource: building the request for the next Block2 block, and
//! reassembling the body while checking that blocks arrive in order, are
//! full-sized and come from one representation (ETag).
//!
//! Registering the follow-up request (fresh message ID and token, same
//! operation) is [`super::Exchanges::send_next_block2`].

use crate::coap::{BlockValue, CoapOption, Message, OptionNumber};

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
    /// The ETag differs from the first block's: the resource changed.
    #[error("the ETag changed during the Block2 transfer")]
    EtagChanged,
    /// A response after the first one carries no Block2 option.
    #[error("a response in the middle of a Block2 transfer has no Block2 option")]
    MissingBlock2,
    /// The body would exceed the size limit, or need more blocks than a
    /// Block option can number.
    #[error("the Block2 body exceeds {limit} bytes or 2^20 blocks")]
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// A block arrived after the last one.
    #[error("the Block2 transfer is already complete")]
    AlreadyComplete,
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
pub fn next_block2_request(request: &Message, response: &Message) -> Option<Message> {
    let block = response.block2()?;
    if !block.more || block.num >= MAX_NUM {
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

/// Reassembles a Block2 body from responses in order.
#[derive(Clone, Debug)]
pub struct Block2Assembly {
    body: Vec<u8>,
    etag: Option<Vec<u8>>,
    started: bool,
    complete: bool,
    limit: usize,
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
        }
    }

    /// Adds the payload of the next response. A first response without
    /// Block2 is the whole body.
    pub fn push(&mut self, response: &Message) -> Result<BlockProgress, BlockError> {
        if self.complete {
            return Err(BlockError::AlreadyComplete);
        }
        let etag = response.option(OptionNumber::ETAG).map(|o| o.value.clone());
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
            return Err(BlockError::EtagChanged);
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
        assert_eq!(a.push(&second), Err(BlockError::EtagChanged));
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
}
