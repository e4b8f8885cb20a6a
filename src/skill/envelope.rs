//! The Alexa request envelope, as the voice platform sends it. Field names follow the
//! `ask-sdk-model` typings. Unknown fields are ignored and unknown request types parse as
//! `RequestBody::Unknown`, so a platform change never breaks parsing.

use serde::Deserialize;
use std::collections::HashMap;

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestEnvelope {
    pub version: String,
    #[serde(default)]
    pub session: Option<Session>,
    #[serde(default)]
    pub context: Option<Context>,
    pub request: Request,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Session {
    #[serde(default)]
    pub new: bool,
    pub session_id: String,
    pub application: Application,
    pub user: User,
    #[serde(default)]
    pub attributes: Option<serde_json::Map<String, serde_json::Value>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Application {
    pub application_id: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub user_id: String,
    #[serde(default)]
    pub access_token: Option<String>,
}

/// A person Alexa recognised by voice (`context.System.person`): one of the account's
/// household, with a linked account of their own when they linked one.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Person {
    pub person_id: String,
    #[serde(default)]
    pub access_token: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Context {
    #[serde(rename = "System")]
    pub system: SystemState,
    #[serde(rename = "AudioPlayer", default)]
    pub audio_player: Option<AudioPlayerState>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SystemState {
    pub application: Application,
    pub user: User,
    /// The recognised voice on a shared device, when Alexa knows it.
    #[serde(default)]
    pub person: Option<Person>,
    #[serde(default)]
    pub device: Option<Device>,
    #[serde(default)]
    pub api_endpoint: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Device {
    pub device_id: String,
    /// The interfaces the device has (`AudioPlayer`, `Display`, …), each with its settings.
    #[serde(default)]
    pub supported_interfaces: HashMap<String, serde_json::Value>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AudioPlayerState {
    #[serde(default)]
    pub token: Option<String>,
    #[serde(default)]
    pub offset_in_milliseconds: Option<u64>,
    #[serde(default)]
    pub player_activity: Option<String>,
}

/// Fields every request type has, and the type-specific rest.
#[derive(Debug, Clone, Deserialize)]
pub struct Request {
    // The body comes first: a flattened struct takes the fields it names, and the head
    // reads `type` too.
    #[serde(flatten)]
    pub body: RequestBody,
    #[serde(flatten)]
    pub head: RequestHead,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestHead {
    /// The request type as sent (kept for logs: `RequestBody::Unknown` has no name).
    #[serde(rename = "type")]
    pub kind: String,
    pub request_id: String,
    /// ISO 8601, e.g. `2026-11-23T10:00:00Z`.
    pub timestamp: String,
    #[serde(default)]
    pub locale: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type")]
pub enum RequestBody {
    LaunchRequest {},
    IntentRequest(IntentRequest),
    SessionEndedRequest(SessionEndedRequest),
    #[serde(rename = "AudioPlayer.PlaybackStarted")]
    PlaybackStarted(AudioPlayerRequest),
    #[serde(rename = "AudioPlayer.PlaybackFinished")]
    PlaybackFinished(AudioPlayerRequest),
    #[serde(rename = "AudioPlayer.PlaybackStopped")]
    PlaybackStopped(AudioPlayerRequest),
    #[serde(rename = "AudioPlayer.PlaybackNearlyFinished")]
    PlaybackNearlyFinished(AudioPlayerRequest),
    #[serde(rename = "AudioPlayer.PlaybackFailed")]
    PlaybackFailed(PlaybackFailedRequest),
    #[serde(rename = "PlaybackController.PlayCommandIssued")]
    PlayCommandIssued {},
    #[serde(rename = "PlaybackController.PauseCommandIssued")]
    PauseCommandIssued {},
    #[serde(rename = "PlaybackController.NextCommandIssued")]
    NextCommandIssued {},
    #[serde(rename = "PlaybackController.PreviousCommandIssued")]
    PreviousCommandIssued {},
    #[serde(rename = "System.ExceptionEncountered")]
    ExceptionEncountered(ExceptionEncounteredRequest),
    /// Any type this version does not know: answered with an empty response.
    #[serde(other)]
    Unknown,
}

impl RequestBody {
    /// AudioPlayer and PlaybackController requests: the device speaks, not a person, and the
    /// response may carry directives only.
    pub fn is_device_report(&self) -> bool {
        matches!(
            self,
            RequestBody::PlaybackStarted(_)
                | RequestBody::PlaybackFinished(_)
                | RequestBody::PlaybackStopped(_)
                | RequestBody::PlaybackNearlyFinished(_)
                | RequestBody::PlaybackFailed(_)
                | RequestBody::PlayCommandIssued {}
                | RequestBody::PauseCommandIssued {}
                | RequestBody::NextCommandIssued {}
                | RequestBody::PreviousCommandIssued {}
        )
    }

    pub fn name(&self) -> &'static str {
        match self {
            RequestBody::LaunchRequest {} => "LaunchRequest",
            RequestBody::IntentRequest(_) => "IntentRequest",
            RequestBody::SessionEndedRequest(_) => "SessionEndedRequest",
            RequestBody::PlaybackStarted(_) => "AudioPlayer.PlaybackStarted",
            RequestBody::PlaybackFinished(_) => "AudioPlayer.PlaybackFinished",
            RequestBody::PlaybackStopped(_) => "AudioPlayer.PlaybackStopped",
            RequestBody::PlaybackNearlyFinished(_) => "AudioPlayer.PlaybackNearlyFinished",
            RequestBody::PlaybackFailed(_) => "AudioPlayer.PlaybackFailed",
            RequestBody::PlayCommandIssued {} => "PlaybackController.PlayCommandIssued",
            RequestBody::PauseCommandIssued {} => "PlaybackController.PauseCommandIssued",
            RequestBody::NextCommandIssued {} => "PlaybackController.NextCommandIssued",
            RequestBody::PreviousCommandIssued {} => "PlaybackController.PreviousCommandIssued",
            RequestBody::ExceptionEncountered(_) => "System.ExceptionEncountered",
            RequestBody::Unknown => "unknown",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IntentRequest {
    #[serde(default)]
    pub dialog_state: Option<String>,
    pub intent: Intent,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Intent {
    pub name: String,
    #[serde(default)]
    pub confirmation_status: Option<String>,
    #[serde(default)]
    pub slots: HashMap<String, Slot>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Slot {
    pub name: String,
    #[serde(default)]
    pub value: Option<String>,
    #[serde(default)]
    pub confirmation_status: Option<String>,
    #[serde(default)]
    pub resolutions: Option<Resolutions>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Resolutions {
    #[serde(default)]
    pub resolutions_per_authority: Vec<Resolution>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Resolution {
    #[serde(default)]
    pub authority: String,
    pub status: ResolutionStatus,
    #[serde(default)]
    pub values: Vec<ValueWrapper>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ResolutionStatus {
    /// `ER_SUCCESS_MATCH`, `ER_SUCCESS_NO_MATCH`, `ER_ERROR_TIMEOUT`, ...
    pub code: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ValueWrapper {
    pub value: ResolvedValue,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ResolvedValue {
    pub name: String,
    #[serde(default)]
    pub id: Option<String>,
}

/// The prefix of the entity-resolution authorities of a skill's own slot types, static
/// (`amzn1.er-authority.echo-sdk.<skill id>.<type>`) and dynamic
/// (`amzn1.er-authority.echo-sdk.dynamic.<skill id>.<type>`).
const OWN_AUTHORITY: &str = "amzn1.er-authority.echo-sdk.";

impl Slot {
    /// The id entity resolution matched in one of the skill's own slot types, if it did.
    /// Other authorities' ids mean nothing here: a built-in slot type may resolve through
    /// Alexa Entities, whose ids are IRIs (`https://ak.amazon.com/…`), not our values.
    pub fn resolved_id(&self) -> Option<&str> {
        self.resolutions
            .as_ref()?
            .resolutions_per_authority
            .iter()
            .find(|r| {
                r.status.code == "ER_SUCCESS_MATCH" && r.authority.starts_with(OWN_AUTHORITY)
            })?
            .values
            .first()
            .and_then(|v| v.value.id.as_deref())
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionEndedRequest {
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub error: Option<ErrorInfo>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ErrorInfo {
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AudioPlayerRequest {
    #[serde(default)]
    pub token: Option<String>,
    #[serde(default)]
    pub offset_in_milliseconds: Option<u64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlaybackFailedRequest {
    #[serde(default)]
    pub token: Option<String>,
    #[serde(default)]
    pub error: Option<ErrorInfo>,
    #[serde(default)]
    pub current_playback_state: Option<AudioPlayerState>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExceptionEncounteredRequest {
    #[serde(default)]
    pub error: Option<ErrorInfo>,
    #[serde(default)]
    pub cause: Option<serde_json::Value>,
}

impl RequestEnvelope {
    /// The skill id the request is for (context first, as every request type has it).
    pub fn application_id(&self) -> Option<&str> {
        self.context
            .as_ref()
            .map(|c| c.system.application.application_id.as_str())
            .or_else(|| {
                self.session
                    .as_ref()
                    .map(|s| s.application.application_id.as_str())
            })
    }

    /// The user as the context names them, then as the session does.
    fn users(&self) -> impl Iterator<Item = &User> {
        let context = self.context.as_ref().map(|c| &c.system.user);
        let session = self.session.as_ref().map(|s| &s.user);
        context.into_iter().chain(session)
    }

    pub fn user_id(&self) -> Option<&str> {
        self.users().next().map(|u| u.user_id.as_str())
    }

    /// The linked account's access token, when the listener linked one.
    pub fn access_token(&self) -> Option<&str> {
        self.users()
            .find_map(|u| u.access_token.as_deref())
            .filter(|t| !t.is_empty())
    }

    /// The recognised person, when Alexa names one (with a non-empty id).
    pub fn person(&self) -> Option<&Person> {
        self.context
            .as_ref()?
            .system
            .person
            .as_ref()
            .filter(|p| !p.person_id.is_empty())
    }

    /// Whether the device can stream audio: it lists the AudioPlayer interface. A request
    /// without a device (a test console's) is taken to have one.
    pub fn plays_audio(&self) -> bool {
        self.context
            .as_ref()
            .and_then(|c| c.system.device.as_ref())
            .is_none_or(|d| d.supported_interfaces.contains_key("AudioPlayer"))
    }

    pub fn device_id(&self) -> Option<&str> {
        self.context
            .as_ref()?
            .system
            .device
            .as_ref()
            .map(|d| d.device_id.as_str())
    }
}
