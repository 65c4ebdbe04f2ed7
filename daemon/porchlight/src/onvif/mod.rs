//! A small ONVIF client for cameras on the home network: Device and Media
//! (ver10) plus Media2 (ver20), over plain HTTP with WS-Security and HTTP
//! Digest. See `docs/onvif.md`.
//!
//! One job per file: [`http`] moves bytes, [`soap`] wraps and unwraps
//! envelopes, [`xml`] reads answers whatever their prefixes, [`device`] and
//! [`media`] and [`events`] know the operations, [`client`] puts them together;
//! [`discovery`] finds cameras on the LAN to connect to.

pub mod client;
pub mod device;
/// `porchlight discover`.
pub mod discover_cli;
/// Finding cameras on the LAN (WS-Discovery); see `docs/onvif-discovery.md`.
pub mod discovery;
pub mod error;
/// Motion and tamper over a PullPoint subscription.
pub mod events;
pub mod http;
pub mod media;
#[cfg(test)]
mod robustness;
pub mod soap;
pub mod xml;

pub use client::{CameraDescription, ClientOptions, OnvifClient, ProfileDescription};
pub use device::{CameraClock, DeviceInformation};
pub use error::{ErrorKind, OnvifError};
pub use events::{follow, follow_with, CameraEvent, CameraEventKind, FollowOptions, Subscription};
pub use media::{AudioEncoder, MediaVersion, Profile, VideoCodec, VideoEncoder};
