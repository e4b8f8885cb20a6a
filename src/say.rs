//! `encore say`: the text path. An utterance is parsed with the interaction model, handled
//! by the same service as the voice path, and the answer is printed.

use crate::app::Parts;
use crate::domain::{Listener, Source, Track};
use crate::interaction::{self, Intent};
use crate::service::{Outcome, PlayBehavior, Playback, PlayerState, SessionEffect};
use crate::settings::{SayArgs, StorageArgs, StoreKind};
use crate::skill::speech::{self, Lang};
use serde_json::json;

/// The device id the text path keeps its queue under.
pub const TEXT_DEVICE: &str = "text";

pub async fn run(args: &SayArgs) -> anyhow::Result<()> {
    let parts = match Parts::load(&args.storage).await {
        Ok(parts) => parts,
        Err(e) if args.storage.store == StoreKind::Embedded => {
            // Most likely a running server holds the data files.
            let scratch = std::env::temp_dir().join(format!("encore-say-{}", std::process::id()));
            eprintln!("encore say: {e:#}; answering from an empty temporary store");
            Parts::load(&StorageArgs {
                data_dir: scratch,
                ..args.storage.clone()
            })
            .await?
        }
        Err(e) => return Err(e),
    };
    let text = args.text.join(" ");
    let model = parts.model.locale(&args.locale);
    let intent = model.parse(&text);
    let command = interaction::command_for(&intent);
    let listener = Listener {
        user_id: args.user.clone(),
        device_id: TEXT_DEVICE.to_owned(),
        locale: model.locale.clone(),
        source: Source::Mobile,
    };
    let outcome = parts
        .service
        .handle(&listener, &PlayerState::default(), command)
        .await;
    parts.feedback.flush().await?;
    parts.store.flush().await?;
    let lang = Lang::of(&listener.locale);
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&as_json(&intent, &outcome, lang))?
        );
    } else {
        print!("{}", as_text(&outcome, lang));
    }
    Ok(())
}

fn track_json(t: &Track) -> serde_json::Value {
    json!({
        "id": t.id.0, "title": t.title, "artist": t.artist, "album": t.album, "genre": t.genre,
        "duration_ms": t.duration_ms, "explicit": t.explicit, "stream_url": t.stream_url,
    })
}

pub fn as_json(intent: &Intent, outcome: &Outcome, lang: Lang) -> serde_json::Value {
    let words = outcome.reply.as_ref().map(|r| speech::words(r, lang));
    let slots: serde_json::Map<String, serde_json::Value> = intent
        .slots
        .iter()
        .map(|(k, v)| (k.clone(), json!({ "heard": v.heard, "id": v.id })))
        .collect();
    let playback = match &outcome.playback {
        Some(Playback::Play {
            behavior,
            token,
            track,
            offset_ms,
            ..
        }) => json!({
            "action": "play",
            "behavior": match behavior { PlayBehavior::ReplaceAll => "REPLACE_ALL", PlayBehavior::Enqueue => "ENQUEUE", PlayBehavior::ReplaceEnqueued => "REPLACE_ENQUEUED" },
            "token": token, "offset_ms": offset_ms, "track": track_json(track),
        }),
        Some(Playback::Stop) => json!({ "action": "stop" }),
        Some(Playback::ClearEnqueued) => json!({ "action": "clear_enqueued" }),
        None => serde_json::Value::Null,
    };
    json!({
        "intent": { "name": intent.name, "slots": slots },
        "speech": words.as_ref().map(|w| &w.speech),
        "reprompt": words.as_ref().and_then(|w| w.reprompt.as_ref()),
        "end_session": outcome.session == SessionEffect::End,
        "playback": playback,
        "upcoming": outcome.upcoming.iter().map(|t| track_json(t)).collect::<Vec<_>>(),
    })
}

fn minutes(ms: u64) -> String {
    format!("{}:{:02}", ms / 60_000, ms / 1000 % 60)
}

pub fn as_text(outcome: &Outcome, lang: Lang) -> String {
    let mut out = String::new();
    if let Some(reply) = &outcome.reply {
        out += &format!("{}\n", speech::words(reply, lang).speech);
    }
    match &outcome.playback {
        Some(Playback::Play {
            track, offset_ms, ..
        }) => {
            out += &format!(
                "  ▶ {} — {} [{}, {}]",
                track.title,
                track.artist,
                track.genre,
                minutes(track.duration_ms)
            );
            if *offset_ms > 0 {
                out += &format!(" from {}", minutes(*offset_ms));
            }
            out += "\n";
            for (i, t) in outcome.upcoming.iter().enumerate() {
                out += &format!(
                    "  {}. {} — {} [{}, {}]\n",
                    i + 2,
                    t.title,
                    t.artist,
                    t.genre,
                    minutes(t.duration_ms)
                );
            }
        }
        Some(Playback::Stop) => out += "  ■ stopped\n",
        Some(Playback::ClearEnqueued) => out += "  upcoming tracks cleared\n",
        None => {}
    }
    if out.is_empty() {
        out = "(nothing to say)\n".into();
    }
    out
}
