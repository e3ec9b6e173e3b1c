//! AutoMessageGenerator: decides, on virtual time, which device posts what and when.
//!
//! A global messages-per-hour rate is split equally across enabled devices; each enabled
//! device posts every `3600 s × enabled / rate` of virtual time. Attachment choice and text
//! come from blake3 of (device, message number), so a run is the same every time.

use thiserror::Error;

pub const MESSAGES_PER_HOUR_MAX: f64 = 36_000.0;
/// Bounds one advance's output: the most an hour's step can produce at the highest rate.
pub const POSTS_PER_ADVANCE_MAX: usize = 36_000;

const HOUR_US: f64 = 3_600_000_000.0;

const PHRASES: &[&str] = &[
    "Checking in from the field",
    "Battery at 40%, still syncing",
    "Saw the update, looks good",
    "Meeting moved to 3pm",
    "Heading out now",
    "Network is flaky here",
    "Photos from the site attached",
    "All quiet on this end",
];

#[derive(Debug, Clone, PartialEq, Error)]
pub enum RateError {
    #[error("messages_per_hour: {0} is outside 0..={MESSAGES_PER_HOUR_MAX}")]
    MessageRate(f64),
    #[error("percent: {0} is outside 0..=100")]
    AttachmentPercent(f64),
    #[error("device {0:?} is not known to the simulation")]
    UnknownDevice(String),
}

#[derive(Clone, Debug, PartialEq)]
pub struct GenDevice {
    pub name: String,
    pub url: String,
    pub enabled: bool,
    pub generated: u64,
    /// Virtual time of this device's next post; `None` while it posts nothing.
    next_due_us: Option<u64>,
}

/// One message to post to `device_url`'s `POST /api/messages`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Post {
    pub device: String,
    pub device_url: String,
    pub due_us: u64,
    pub text: String,
    /// The number of this message among its device's (1, 2, ...).
    pub number: u64,
    /// Seed of the picture attached, if this message carries one ([`super::image::picture`]).
    pub picture: Option<[u8; 32]>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Generator {
    devices: Vec<GenDevice>,
    messages_per_hour: f64,
    attachment_percent: f64,
}

impl Generator {
    /// Every device starts enabled.
    pub fn new(
        devices: Vec<(String, String)>,
        messages_per_hour: f64,
        attachment_percent: f64,
    ) -> Self {
        let devices = devices
            .into_iter()
            .map(|(name, url)| GenDevice {
                name,
                url,
                enabled: true,
                generated: 0,
                next_due_us: None,
            })
            .collect();
        let mut generator = Generator {
            devices,
            messages_per_hour,
            attachment_percent,
        };
        generator.reschedule(0);
        generator
    }

    pub fn devices(&self) -> &[GenDevice] {
        &self.devices
    }
    pub fn messages_per_hour(&self) -> f64 {
        self.messages_per_hour
    }
    pub fn attachment_percent(&self) -> f64 {
        self.attachment_percent
    }

    /// Virtual time between one device's posts, at the current rate and enabled count.
    pub fn interval_us(&self) -> Option<u64> {
        let enabled = self.devices.iter().filter(|d| d.enabled).count();
        if enabled == 0 || self.messages_per_hour <= 0.0 {
            return None;
        }
        Some(
            ((HOUR_US * enabled as f64) / self.messages_per_hour)
                .round()
                .max(1.0) as u64,
        )
    }

    pub fn set_message_rate(&mut self, now_us: u64, per_hour: f64) -> Result<(), RateError> {
        if !(0.0..=MESSAGES_PER_HOUR_MAX).contains(&per_hour) {
            return Err(RateError::MessageRate(per_hour));
        }
        self.messages_per_hour = per_hour;
        self.reschedule(now_us);
        Ok(())
    }

    pub fn set_attachment_percent(&mut self, percent: f64) -> Result<(), RateError> {
        if !(0.0..=100.0).contains(&percent) {
            return Err(RateError::AttachmentPercent(percent));
        }
        self.attachment_percent = percent;
        Ok(())
    }

    pub fn set_enabled(&mut self, now_us: u64, name: &str, enabled: bool) -> Result<(), RateError> {
        let device = self
            .devices
            .iter_mut()
            .find(|d| d.name == name)
            .ok_or_else(|| RateError::UnknownDevice(name.to_owned()))?;
        device.enabled = enabled;
        self.reschedule(now_us);
        Ok(())
    }

    /// A new rate or device set takes effect from `now_us`: each enabled device's next post
    /// is one new interval away.
    fn reschedule(&mut self, now_us: u64) {
        let interval = self.interval_us();
        for device in &mut self.devices {
            device.next_due_us = match (device.enabled, interval) {
                (true, Some(interval)) => Some(now_us + interval),
                _ => None,
            };
        }
    }

    /// Everything due up to virtual time `to_us`, in time order.
    pub fn advance(&mut self, to_us: u64) -> Vec<Post> {
        let Some(interval) = self.interval_us() else {
            return Vec::new();
        };
        let mut posts = Vec::new();
        for i in 0..self.devices.len() {
            while let Some(due) = self.devices[i].next_due_us.filter(|due| *due <= to_us) {
                if posts.len() >= POSTS_PER_ADVANCE_MAX {
                    // Skip the backlog rather than flood the devices.
                    self.devices[i].next_due_us = Some(to_us + interval);
                    break;
                }
                let post = self.make_post(i, due);
                posts.push(post);
                let device = &mut self.devices[i];
                device.generated += 1;
                device.next_due_us = Some(due + interval);
            }
        }
        posts.sort_by(|a, b| (a.due_us, &a.device).cmp(&(b.due_us, &b.device)));
        posts
    }

    fn make_post(&self, i: usize, due_us: u64) -> Post {
        let device = &self.devices[i];
        let mut hasher = blake3::Hasher::new_derive_key("meshlog sim-service generator v1");
        hasher
            .update(device.name.as_bytes())
            .update(&device.generated.to_le_bytes());
        let dice = hasher.finalize();
        let dice = dice.as_bytes();
        let roll = f64::from(u16::from_le_bytes([dice[0], dice[1]]) % 10_000) / 100.0;
        let phrase = PHRASES[usize::from(dice[2]) % PHRASES.len()];
        let picture = (roll < self.attachment_percent)
            .then(|| *blake3::keyed_hash(dice, b"picture").as_bytes());
        Post {
            device: device.name.clone(),
            device_url: device.url.clone(),
            due_us,
            text: format!("{phrase} (#{} from {})", device.generated + 1, device.name),
            number: device.generated + 1,
            picture,
        }
    }
}
