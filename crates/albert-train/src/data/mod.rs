//! Pretraining data: a corpus in ALBERT's input format (one sentence per line, a blank line between
//! documents), tokenized once; examples made from it per epoch (segment pairs with SOP, NSP or no
//! sentence objective, and n-gram masking), deterministic for a seed; batches as tensors.
//!
//! Reference: Lan et al. 2019 §4.1 and google-research/albert `create_pretraining_data.py`.

pub mod batch;
pub mod corpus;
pub mod instances;
pub mod masking;

pub use batch::Batch;
pub use corpus::Corpus;
pub use instances::{Instance, InstanceOptions, InstanceStream, Objective, create_instances};
pub use masking::{MaskingOptions, SpecialIds};
