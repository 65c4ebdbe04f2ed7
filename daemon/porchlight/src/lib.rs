//! Porchlight: a home NVR whose owner decides what the police can see.
//!
//! Data flows one way: camera → [`ingest`] → [`store`] → (export | live) →
//! (owner | relay).

pub mod allocator;
pub mod audit;
pub mod camera_events;
pub mod check;
pub mod config;
pub mod controls;
pub mod daemon;
pub mod demo;
pub mod durable;
pub mod events;
pub mod evidence;
pub mod export;
pub mod fill;
/// Entry points for the fuzz targets in `fuzz/`; not an API.
#[doc(hidden)]
pub mod fuzzing;
pub mod health;
pub mod http;
pub mod ingest;
pub mod live;
pub mod logging;
pub mod metrics;
pub mod notify;
pub mod onboard;
pub mod onvif;
pub mod owner_client;
pub mod plugin_host;
pub mod policy;
pub mod relay;
pub mod requests;
mod signals;
pub mod status;
pub mod store;
pub mod time;
pub mod ui;
