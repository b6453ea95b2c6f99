//! SSTables: sorted, immutable files of sealed blocks.
//!
//! ```text
//! file    = file header ‖ data block* ‖ filter block? ‖ index block ‖ properties block
//!           ‖ footer block ‖ footer len u32 ‖ "SEALEND\0"
//! ```
//! Every block is a sealed block (nonce = block counter from 1, place = its offset). The
//! index block maps the last internal key of each data block to its handle
//! (varint offset ‖ varint sealed length). The footer block holds the handles of the index,
//! filter and properties blocks, each (offset u64, sealed length u32); a filter length of 0
//! means no filter.

pub(crate) mod block;
pub(crate) mod cache;
pub(crate) mod filter;
mod table;

pub use block::{Block, BlockIter};
pub(crate) use cache::BlockCache;
pub use filter::Filter;
pub use table::decode_footer;
#[cfg(test)]
pub(crate) use table::tests;
pub(crate) use table::{BuildOptions, Table, TableBuilder, TableIter};
