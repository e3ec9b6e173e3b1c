//! Joining: the request a new device sends its inviter, and the welcome it gets back.
