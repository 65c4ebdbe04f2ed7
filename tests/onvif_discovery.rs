//! ONVIF WS-Discovery user stories.
