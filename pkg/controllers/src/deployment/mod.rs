//! The Deployment controller (in progress).

use crate::Context;

pub async fn run(ctx: Context) {
    ctx.shutdown().cancelled().await;
}
