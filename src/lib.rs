//! sealdb: an embedded LSM-tree key-value store in which every byte on disk is sealed.
#![allow(missing_docs)]
pub mod coding;
pub mod crypto;
pub mod error;
pub mod io;
pub mod options;
pub mod seal;
pub mod batch;
pub use error::{Error, Result};
pub use options::{Cipher, Encryption, Options};
pub use crypto::MasterKey;
pub use batch::WriteBatch;

mod db;
pub use db::{DataKeyInfo, EncryptionStatus, Iter, Snapshot, DB};
