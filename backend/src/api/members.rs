//! Membership routes: `GET /api/members`, and the admins' `DELETE /api/members/:name`,
//! `DELETE /api/people/:name` (a person and all their devices), `POST /api/keys/rotate` and
//! `POST /api/invites`. The node decides who may do what (its
//! settled roster); its refusals become `403` (not an admin, or removed), `404` (not a member)
//! and `409` (the last admin).

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use meshlog_core::member::Role;
use meshlog_core::node::MemberError;
use meshlog_core::Duration;
use meshlog_net::DriverError;
use serde::Deserialize;
use serde_json::{json, Value};

use super::backend::DeviceBackend;
pub use super::backend::InviteRequest;
use crate::device::views::MemberView;
use crate::http::{json_body, ApiError};

/// Longest an invite may stay valid: 30 days.
pub const INVITE_EXPIRES_IN_S_MAX: u64 = 30 * 24 * 60 * 60;
/// Most devices one invite may admit (core's bound).
pub const INVITE_USES_MAX: u32 = meshlog_core::member::invite::INVITE_USES_MAX as u32;

/// The body of `POST /api/invites`; every field has a default.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewInvite {
    #[serde(default = "default_role")]
    role: String,
    #[serde(default = "default_expires_in_s")]
    expires_in_s: u64,
    #[serde(default = "default_uses")]
    uses: u32,
}

fn default_role() -> String {
    Role::Member.name().to_owned()
}
fn default_expires_in_s() -> u64 {
    24 * 60 * 60
}
fn default_uses() -> u32 {
    1
}

impl NewInvite {
    pub fn check(self) -> Result<InviteRequest, ApiError> {
        let role = Role::parse(&self.role).ok_or_else(|| {
            ApiError::bad_request(format!(
                "role: {:?}, expected \"admin\" or \"member\"",
                self.role
            ))
        })?;
        if !(1..=INVITE_EXPIRES_IN_S_MAX).contains(&self.expires_in_s) {
            return Err(ApiError::bad_request(format!(
                "expires_in_s: {}, expected 1..={INVITE_EXPIRES_IN_S_MAX} (30 days)",
                self.expires_in_s
            )));
        }
        if !(1..=INVITE_USES_MAX).contains(&self.uses) {
            return Err(ApiError::bad_request(format!(
                "uses: {}, expected 1..={INVITE_USES_MAX}",
                self.uses
            )));
        }
        Ok(InviteRequest {
            role,
            valid_for: Duration::from_millis(self.expires_in_s * 1_000),
            uses: u16::try_from(self.uses).expect("checked against INVITE_USES_MAX"),
        })
    }
}

fn status(status: StatusCode, message: String) -> ApiError {
    ApiError { status, message }
}

/// A node's refusal of a membership verb as the HTTP answer it becomes.
pub fn member_error(err: MemberError) -> ApiError {
    let message = err.to_string();
    match err {
        MemberError::NotAnAdmin | MemberError::Removed => status(StatusCode::FORBIDDEN, message),
        MemberError::NotAMember(_) | MemberError::NotAPerson(_) => {
            status(StatusCode::NOT_FOUND, message)
        }
        MemberError::LastAdmin
        | MemberError::NameTaken(_)
        | MemberError::Certified(_)
        | MemberError::PersonKeyMismatch(_) => status(StatusCode::CONFLICT, message),
        MemberError::Invite(invite) => {
            ApiError::bad_request(format!("invite: {} ({invite})", invite.code()))
        }
        MemberError::Append(_) => ApiError::internal(message),
    }
}

/// A driver's answer to a membership verb as the HTTP answer it becomes.
pub fn driver_error(err: DriverError) -> ApiError {
    match err {
        DriverError::Member(err) => member_error(err),
        DriverError::NotRecordable => status(StatusCode::CONFLICT, err.to_string()),
        err => ApiError::internal(err),
    }
}

/// A simulated device's answer to the admins' verbs (the simulator does not offer them yet).
pub fn not_in_simulated_mode(what: &str) -> ApiError {
    status(
        StatusCode::NOT_IMPLEMENTED,
        format!("{what}: not available in simulated mode yet (real devices only)"),
    )
}

pub async fn get_members<B: DeviceBackend>(
    State(device): State<B>,
) -> Result<Json<Vec<MemberView>>, ApiError> {
    Ok(Json(device.members().await?))
}

pub async fn delete_member<B: DeviceBackend>(
    State(device): State<B>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let key_epoch = device.remove_member(&name).await?;
    Ok(Json(json!({ "removed": name, "key_epoch": key_epoch })))
}

pub async fn delete_person<B: DeviceBackend>(
    State(device): State<B>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let key_epoch = device.remove_person(&name).await?;
    Ok(Json(
        json!({ "removed_person": name, "key_epoch": key_epoch }),
    ))
}

pub async fn post_rotate<B: DeviceBackend>(
    State(device): State<B>,
) -> Result<Json<Value>, ApiError> {
    let key_epoch = device.rotate_keys().await?;
    Ok(Json(json!({ "key_epoch": key_epoch })))
}

pub async fn post_invite<B: DeviceBackend>(
    State(device): State<B>,
    body: Result<Json<NewInvite>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let request = json_body(body)?.check()?;
    let invite = device.create_invite(request).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "token": invite.to_token(),
            "role": invite.grant.role.name(),
            "uses": invite.grant.uses,
            "expires_at_ms": invite.grant.expires_at.as_micros() / 1_000,
            "address": invite.address,
        })),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invite(body: Value) -> Result<InviteRequest, ApiError> {
        serde_json::from_value::<NewInvite>(body)
            .map_err(|err| ApiError::bad_request(err.to_string()))?
            .check()
    }

    #[test]
    fn invite_bounds() {
        let ok = invite(json!({"role": "admin", "expires_in_s": 1, "uses": 1000})).unwrap();
        assert_eq!(ok.role, Role::Admin);
        assert_eq!(ok.uses, 1000);
        assert_eq!(ok.valid_for, Duration::from_millis(1_000));
        let default = invite(json!({})).unwrap();
        assert_eq!((default.role, default.uses), (Role::Member, 1));
        assert!(invite(json!({"expires_in_s": INVITE_EXPIRES_IN_S_MAX})).is_ok());
        for bad in [
            json!({"expires_in_s": 0}),
            json!({"expires_in_s": INVITE_EXPIRES_IN_S_MAX + 1}),
            json!({"uses": 0}),
            json!({"uses": 1001}),
            json!({"role": "owner"}),
            json!({"role": "Admin"}),
        ] {
            let err = invite(bad.clone()).unwrap_err();
            assert_eq!(err.status, StatusCode::BAD_REQUEST, "{bad}");
        }
    }

    #[test]
    fn refusals_become_their_statuses() {
        let cases = [
            (MemberError::NotAnAdmin, 403),
            (MemberError::Removed, 403),
            (MemberError::NotAMember("zed".into()), 404),
            (MemberError::LastAdmin, 409),
        ];
        for (err, code) in cases {
            assert_eq!(member_error(err).status.as_u16(), code);
        }
        assert_eq!(
            driver_error(DriverError::NotRecordable).status.as_u16(),
            409
        );
    }
}
