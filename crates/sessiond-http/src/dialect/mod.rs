//! Vendor dialects. Each translates its wire format to core calls and back; none decides, and
//! none uses another.

pub mod clerk;
pub mod equisoft;
pub mod trinsic;
