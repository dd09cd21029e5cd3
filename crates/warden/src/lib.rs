/*!
Warden: a governance gateway for AI agents.

This crate is the gateway and the `warden` binary. A request flows through [`pipeline`]: it is
routed to a provider operation and an upstream, its body is read within limits and parsed into
the normalized exchange model (`warden-protocol`), it is forwarded over a pooled connection, and
the response streams back through an inspecting body that records the exchange when it ends.

- [`config`]: `warden.toml`, environment and flags, validated once.
- [`pipeline`]: the stages of one exchange, each in its own module.
- [`server`]: sockets, connections, graceful shutdown.
- [`cli`]: one module per command; [`demo`]: `warden demo`.

Provider JSON is read only by `warden-protocol`; the fake provider lives in `warden-mock`.
*/
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod admin;
pub mod approve;
pub mod audit;
pub mod cli;
pub mod config;
pub mod control;
pub mod demo;
pub mod metrics;
pub mod pipeline;
pub mod server;
pub mod telemetry;
