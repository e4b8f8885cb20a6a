//! The Alexa side: the wire types, request verification, the translation of a request into
//! a service command, and the rendering of the service's outcome into a response that
//! respects what each request type may carry.

pub mod envelope;
pub mod response;
pub mod verify;

use crate::api::auth::JwtVerifier;
use crate::domain::{Listener, Source, Track};
use crate::interaction::speech::{self, Lang};
use crate::interaction::{self, InteractionModel, SlotFill};
use crate::service::{
    self, Command, Outcome, PlaybackEvent, PlaybackEventKind, PlayerState, Reply, Service,
    SessionEffect, SlotKind,
};
use envelope::{RequestBody, RequestEnvelope};
use response::{
    AudioItem, AudioItemMetadata, Card, CardImage, Directive, Image, ImageSource, Reprompt,
    Response, ResponseEnvelope, Stream, UpdatedIntent, UpdatedSlot,
};
use std::sync::Arc;
use verify::{Rejection, Verifier};

/// A POST to the skill endpoint: the raw body and the two signature headers.
pub struct SignedRequest<'a> {
    pub cert_url: Option<&'a str>,
    pub signature: Option<&'a str>,
    pub body: &'a [u8],
}

pub struct Skill {
    service: Arc<Service>,
    model: Arc<InteractionModel>,
    /// `None` only when verification was turned off for local development.
    verifier: Option<Verifier>,
    /// Maps a linked account's access token to the app's user id (when the mobile API's
    /// verifier is configured), so a listener is one person on both paths.
    accounts: Option<Arc<JwtVerifier>>,
    /// How long the service may take before the listener hears an apology instead (the
    /// platform gives up after about 8 s).
    deadline: std::time::Duration,
}

/// The default answer deadline.
pub const DEADLINE: std::time::Duration = std::time::Duration::from_secs(6);

impl Skill {
    pub fn new(
        service: Arc<Service>,
        model: Arc<InteractionModel>,
        verifier: Option<Verifier>,
    ) -> Self {
        Skill {
            service,
            model,
            verifier,
            accounts: None,
            deadline: DEADLINE,
        }
    }

    pub fn with_deadline(mut self, deadline: std::time::Duration) -> Self {
        self.deadline = deadline;
        self
    }

    /// Resolves linked accounts with the mobile API's token verifier.
    pub fn with_accounts(mut self, accounts: Option<Arc<JwtVerifier>>) -> Self {
        self.accounts = accounts;
        self
    }

    /// Who the listener is, and (for a recognised person) the account they speak through.
    /// A recognised voice (`context.System.person`) is that person: their linked account if
    /// they linked one, else their person id. The account is its linked account, else the
    /// platform's user id. A linked account's token that does not verify is `None`:
    /// serving the platform user instead would find another listener's queue and profile
    /// without a word.
    async fn user_of(
        &self,
        envelope: &RequestEnvelope,
        platform_user: &str,
    ) -> Option<(String, Option<String>)> {
        let account = self.linked(envelope.access_token(), platform_user).await?;
        match envelope.person() {
            Some(person) => {
                let token = person.access_token.as_deref().filter(|t| !t.is_empty());
                let user = self.linked(token, &person.person_id).await?;
                Some((user, Some(account)))
            }
            None => Some((account, None)),
        }
    }

    /// The app's user id for a linked account's `token`, `fallback` without one, `None`
    /// when the token is refused.
    async fn linked(&self, token: Option<&str>, fallback: &str) -> Option<String> {
        let (Some(accounts), Some(token)) = (&self.accounts, token) else {
            return Some(fallback.to_owned());
        };
        match accounts.verify(token).await {
            Ok(user) => Some(user),
            Err(e) => {
                tracing::info!(
                    reason = e.label(),
                    "linked account token refused; asking to link again"
                );
                metrics::counter!("encore_linked_account_refused_total").increment(1);
                None
            }
        }
    }

    /// Verifies, understands and answers one request. A refused request is an `Err`: the
    /// platform's protocol wants HTTP 400 for it. Anything else gets a response a listener
    /// can hear (or, for device reports, directives only).
    pub async fn handle(&self, request: SignedRequest<'_>) -> Result<ResponseEnvelope, Rejection> {
        if let Some(verifier) = &self.verifier {
            verifier
                .verify_signature(request.cert_url, request.signature, request.body)
                .await?;
        }
        let envelope: RequestEnvelope = serde_json::from_slice(request.body)
            .map_err(|e| Rejection::Malformed(e.to_string()))?;
        if let Some(verifier) = &self.verifier {
            verifier.check_request(&envelope.request.head.timestamp, envelope.application_id())?;
        }
        Ok(self.answer(envelope).await)
    }

    async fn answer(&self, envelope: RequestEnvelope) -> ResponseEnvelope {
        let locale = envelope
            .request
            .head
            .locale
            .clone()
            .unwrap_or_else(|| "en-US".to_owned());
        let Some(user_id) = envelope.user_id() else {
            tracing::warn!(
                request_id = envelope.request.head.request_id,
                "request without a user, answered empty"
            );
            return ResponseEnvelope::empty();
        };
        let Some((listener_id, account_id)) = self.user_of(&envelope, user_id).await else {
            // Nothing is played or recorded as anyone else; a listener who can be spoken
            // to hears why, with a card to link the account again.
            let body = &envelope.request.body;
            let spoken = matches!(
                body,
                RequestBody::LaunchRequest {} | RequestBody::IntentRequest(_)
            );
            if !spoken {
                return ResponseEnvelope::empty();
            }
            let outcome = Outcome::end(Some(Reply::RelinkAccount));
            let mut envelope = render(body, outcome, Lang::of(&locale));
            envelope.response.card = Some(Card::LinkAccount);
            return envelope;
        };
        let listener = Listener {
            user_id: listener_id,
            account_id,
            device_id: envelope.device_id().unwrap_or("unknown-device").to_owned(),
            locale,
            source: Source::Alexa,
        };
        let player = player_state(&envelope);
        let body = &envelope.request.body;
        let Some(command) = self.command(&envelope.request, &listener.locale) else {
            return ResponseEnvelope::empty();
        };
        tracing::debug!(request = body.name(), ?command, "handling");
        // A label from a fixed set: an intent the interaction model does not have is OTHER.
        let intent = match body {
            envelope::RequestBody::IntentRequest(i) if self.model.knows_intent(&i.intent.name) => {
                i.intent.name.clone()
            }
            envelope::RequestBody::IntentRequest(_) => "OTHER".to_owned(),
            _ => String::new(),
        };
        let labels = [("type", body.name().to_owned()), ("intent", intent)];
        metrics::counter!("encore_alexa_requests_total", &labels).increment(1);
        let started = std::time::Instant::now();
        let outcome = if command.needs_audio() && !envelope.plays_audio() {
            // Nothing is queued or recorded: the device could not play it.
            Outcome::end(Some(Reply::NoAudioPlayer))
        } else {
            let handled = self.service.handle(&listener, &player, command);
            match tokio::time::timeout(self.deadline, handled).await {
                Ok(outcome) => outcome,
                Err(_) => {
                    tracing::error!(user_id = %listener.user_id, deadline_ms = self.deadline.as_millis() as u64, "answer deadline passed; apologising");
                    metrics::counter!("encore_alexa_deadline_exceeded_total").increment(1);
                    Outcome::end(Some(Reply::Trouble))
                }
            }
        };
        metrics::histogram!("encore_alexa_request_duration_seconds", &labels)
            .record(started.elapsed().as_secs_f64());
        let mut response = render(body, outcome, Lang::of(&listener.locale));
        // With the mobile API on, an unlinked listener is offered the link when they open
        // the skill: their app's playlists then play here too.
        if self.accounts.is_some()
            && envelope.access_token().is_none()
            && matches!(body, RequestBody::LaunchRequest {})
        {
            response.response.card = Some(Card::LinkAccount);
        }
        response
    }

    fn command(&self, request: &envelope::Request, locale: &str) -> Option<Command> {
        let body = &request.body;
        let report = |kind, token: &Option<String>, offset: Option<u64>| {
            token.as_ref().map(|t| {
                Command::Playback(PlaybackEvent {
                    kind,
                    token: t.clone(),
                    offset_ms: offset.unwrap_or(0),
                })
            })
        };
        match body {
            RequestBody::LaunchRequest {} => Some(Command::Launch),
            RequestBody::IntentRequest(req) => {
                Some(interaction::command_for(&self.intent(&req.intent, locale)))
            }
            RequestBody::SessionEndedRequest(req) => {
                if let Some(error) = &req.error {
                    tracing::warn!(reason = ?req.reason, error = ?error.message, kind = ?error.kind, "session ended with an error");
                }
                Some(Command::SessionEnded)
            }
            RequestBody::PlaybackStarted(r) => report(
                PlaybackEventKind::Started,
                &r.token,
                r.offset_in_milliseconds,
            ),
            RequestBody::PlaybackFinished(r) => report(
                PlaybackEventKind::Finished,
                &r.token,
                r.offset_in_milliseconds,
            ),
            RequestBody::PlaybackStopped(r) => report(
                PlaybackEventKind::Stopped,
                &r.token,
                r.offset_in_milliseconds,
            ),
            RequestBody::PlaybackNearlyFinished(r) => report(
                PlaybackEventKind::NearlyFinished,
                &r.token,
                r.offset_in_milliseconds,
            ),
            RequestBody::PlaybackFailed(r) => {
                tracing::warn!(error = ?r.error.as_ref().and_then(|e| e.message.as_deref()), "device reports playback failure");
                let offset = r
                    .current_playback_state
                    .as_ref()
                    .and_then(|s| s.offset_in_milliseconds);
                report(PlaybackEventKind::Failed, &r.token, offset)
            }
            RequestBody::PlayCommandIssued {} => Some(Command::Resume),
            RequestBody::PauseCommandIssued {} => Some(Command::Pause),
            RequestBody::NextCommandIssued {} => Some(Command::Next),
            RequestBody::PreviousCommandIssued {} => Some(Command::Previous),
            RequestBody::ExceptionEncountered(r) => {
                tracing::error!(error = ?r.error.as_ref().and_then(|e| e.message.as_deref()), cause = ?r.cause, "the platform reports an error in our response");
                None
            }
            RequestBody::Unknown => {
                tracing::info!(
                    kind = request.head.kind,
                    "unknown request type, answered empty"
                );
                None
            }
        }
    }

    /// Slot values resolve through entity resolution ids when Alexa sends them, and
    /// through the interaction model's values and synonyms otherwise.
    fn intent(&self, intent: &envelope::Intent, locale: &str) -> interaction::Intent {
        let model = self.model.locale(locale);
        let slots = intent
            .slots
            .iter()
            .map(|(name, slot)| {
                let heard = slot.value.clone();
                let id = slot.resolved_id().map(str::to_owned).or_else(|| {
                    let ty = model.slot_type(&intent.name, name)?;
                    model.resolve(ty, heard.as_deref()?).map(str::to_owned)
                });
                (name.clone(), SlotFill { heard, id })
            })
            .collect();
        interaction::Intent {
            name: intent.name.clone(),
            slots,
        }
    }
}

/// What the device plays: a failure report's own `currentPlaybackState` (which tells an
/// enqueued stream's failure from the playing one's), else the context's AudioPlayer.
fn player_state(envelope: &RequestEnvelope) -> PlayerState {
    let reported = match &envelope.request.body {
        RequestBody::PlaybackFailed(r) => r.current_playback_state.as_ref(),
        _ => None,
    };
    let Some(ap) = reported.or_else(|| {
        envelope
            .context
            .as_ref()
            .and_then(|c| c.audio_player.as_ref())
    }) else {
        return PlayerState::default();
    };
    PlayerState {
        token: ap.token.clone().filter(|t| !t.is_empty()),
        offset_ms: ap.offset_in_milliseconds.unwrap_or(0),
        playing: ap.player_activity.as_deref() == Some("PLAYING"),
    }
}

/// The response for `outcome`, holding to what the request type may carry.
pub fn render(body: &RequestBody, outcome: Outcome, lang: Lang) -> ResponseEnvelope {
    match body {
        RequestBody::SessionEndedRequest(_)
        | RequestBody::ExceptionEncountered(_)
        | RequestBody::Unknown
        | RequestBody::PlaybackStopped(_) => return ResponseEnvelope::empty(),
        _ => {}
    }
    let mut response = Response {
        directives: outcome.playback.iter().map(directive).collect(),
        ..Response::default()
    };
    if body.is_device_report() {
        return ResponseEnvelope::new(response);
    }
    if let Some(reply) = &outcome.reply {
        let words = speech::words(reply, lang);
        response.output_speech = Some(response::ssml(&words.speech));
        response.reprompt = words.reprompt.as_deref().map(|r| Reprompt {
            output_speech: response::ssml(r),
        });
        if let (Some(title), Some(service::Playback::Play { track, .. })) =
            (words.card_title, &outcome.playback)
        {
            response.card = Some(card(title, track, lang));
        }
    }
    if let (Some(Reply::AskFor(kind)), RequestBody::IntentRequest(request)) = (&outcome.reply, body)
        && let Some(elicit) = elicit_slot(&request.intent, *kind)
    {
        response.directives.push(elicit);
    }
    response.should_end_session = Some(outcome.session == SessionEffect::End);
    ResponseEnvelope::new(response)
}

/// `Dialog.ElicitSlot` for the slot of `intent` that `kind` names, when the intent has it
/// (Alexa sends every slot an intent defines, filled or not), with the other slots as heard
/// so far and the asked-for one emptied (what was heard there matched no value).
fn elicit_slot(intent: &envelope::Intent, kind: SlotKind) -> Option<Directive> {
    let slot = kind.slot_name();
    intent
        .slots
        .contains_key(slot)
        .then(|| Directive::ElicitSlot {
            slot_to_elicit: slot.to_owned(),
            updated_intent: UpdatedIntent {
                name: intent.name.clone(),
                confirmation_status: "NONE",
                slots: intent
                    .slots
                    .iter()
                    .map(|(name, heard)| {
                        let updated = UpdatedSlot {
                            name: name.clone(),
                            value: heard
                                .value
                                .clone()
                                .filter(|v| !v.is_empty() && name != slot),
                            confirmation_status: "NONE",
                        };
                        (name.clone(), updated)
                    })
                    .collect(),
            },
        })
}

fn card(title: String, track: &Track, lang: Lang) -> Card {
    let by = lang.by();
    let text = format!("{}\n{by} {}\n{}", track.title, track.artist, track.album);
    match &track.art_url {
        Some(url) => Card::Standard {
            title,
            text,
            image: Some(CardImage {
                small_image_url: url.clone(),
                large_image_url: url.clone(),
            }),
        },
        None => Card::Simple {
            title,
            content: text,
        },
    }
}

fn directive(playback: &service::Playback) -> Directive {
    match playback {
        service::Playback::Play {
            behavior,
            token,
            track,
            offset_ms,
            expected_previous,
        } => Directive::Play {
            play_behavior: match behavior {
                service::PlayBehavior::ReplaceAll => response::PlayBehavior::ReplaceAll,
                service::PlayBehavior::Enqueue => response::PlayBehavior::Enqueue,
                service::PlayBehavior::ReplaceEnqueued => response::PlayBehavior::ReplaceEnqueued,
            },
            audio_item: AudioItem {
                stream: Stream {
                    url: track.stream_url.clone(),
                    token: token.clone(),
                    expected_previous_token: expected_previous.clone(),
                    offset_in_milliseconds: *offset_ms,
                },
                metadata: Some(AudioItemMetadata {
                    title: track.title.clone(),
                    subtitle: track.artist.clone(),
                    art: track.art_url.as_ref().map(|url| Image {
                        content_description: Some(format!("{} — {}", track.album, track.artist)),
                        sources: vec![ImageSource { url: url.clone() }],
                    }),
                    background_image: None,
                }),
            },
        },
        service::Playback::Stop => Directive::Stop {},
        service::Playback::ClearEnqueued => Directive::ClearQueue {
            clear_behavior: response::ClearBehavior::ClearEnqueued,
        },
    }
}
