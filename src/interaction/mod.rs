//! The interaction model in `intents/` (ask-cli skill package): intents, slot types and sample
//! utterances per locale. It is the one source both paths read: the Alexa path resolves slot
//! values through it, and the text path (`encore say`, mobile voice) parses utterances with
//! a matcher built from its samples.

mod command;
mod model;
mod package;
mod parser;
pub mod speech;

pub use command::{Intent, SlotFill, command_for};
pub use model::{InteractionModel, LocaleModel, ModelError};
pub use parser::{ListedValues, OpenValues};
