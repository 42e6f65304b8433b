//! What the engine's parts share: the model the schema was generated from, and the executor
//! that runs statements on the pool.

use std::sync::Arc;

use crate::execute::Executor;
use crate::model::Model;

pub(crate) struct State {
    pub(crate) model: Arc<Model>,
    pub(crate) executor: Arc<Executor>,
}
