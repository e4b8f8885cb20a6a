//! `encore say`: the text path. The utterance goes through the same function as the mobile
//! app's `/v1/voice` (`api::voice::answer`), and the answer is printed as text or JSON.

use crate::api::TrackDto;
use crate::api::voice::{self, PlaybackDto, VoiceAnswer};
use crate::app::Components;
use crate::domain::{Listener, Source};
use crate::settings::{StorageArgs, StoreKind};
use clap::Args;

/// The device id the text path keeps its queue under.
pub const TEXT_DEVICE: &str = "text";

#[derive(Debug, Clone, Args)]
pub struct SayArgs {
    /// The listener to speak as.
    #[arg(long, env = "ENCORE_SAY_USER", default_value = "local-user")]
    pub user: String,

    /// Locale of the utterance (one of the locales in intents/).
    #[arg(long, env = "ENCORE_SAY_LOCALE", default_value = "en-US")]
    pub locale: String,

    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub storage: StorageArgs,

    /// What to say, e.g. "play something relaxing".
    #[arg(required = true, num_args = 1..)]
    pub text: Vec<String>,
}

pub async fn run(args: &SayArgs) -> anyhow::Result<()> {
    let parts = match Components::load(&args.storage).await {
        Ok(parts) => parts,
        Err(e) if args.storage.store == StoreKind::Embedded => {
            // Most likely a running server holds the data files.
            let scratch = std::env::temp_dir().join(format!("encore-say-{}", std::process::id()));
            eprintln!("encore say: {e:#}; answering from an empty temporary store");
            Components::load(&StorageArgs {
                data_dir: scratch,
                ..args.storage.clone()
            })
            .await?
        }
        Err(e) => return Err(e),
    };
    let model = parts.model.locale(&args.locale);
    let listener = Listener {
        user_id: args.user.clone(),
        account_id: None,
        device_id: TEXT_DEVICE.to_owned(),
        locale: model.locale.clone(),
        source: Source::Mobile,
    };
    let answer = voice::answer(&parts.service, model, &listener, &args.text.join(" ")).await;
    parts.feedback.flush().await?;
    parts.store.flush().await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&answer)?);
    } else {
        print!("{}", as_text(&answer));
    }
    Ok(())
}

fn minutes(ms: u64) -> String {
    format!("{}:{:02}", ms / 60_000, ms / 1000 % 60)
}

fn track_line(t: &TrackDto) -> String {
    let year = t.year.map(|y| format!("{y}, ")).unwrap_or_default();
    format!(
        "{} — {} [{}, {year}{}]",
        t.title,
        t.artist,
        t.genre,
        minutes(t.duration_ms)
    )
}

/// The answer as a person reads it: the speech, the track starting and the ones after it.
pub fn as_text(answer: &VoiceAnswer) -> String {
    let mut out = String::new();
    if let Some(speech) = &answer.speech {
        out += &format!("{speech}\n");
    }
    match &answer.playback {
        Some(PlaybackDto::Play {
            track, offset_ms, ..
        }) => {
            out += &format!("  ▶ {}", track_line(track));
            if *offset_ms > 0 {
                out += &format!(" from {}", minutes(*offset_ms));
            }
            out += "\n";
            for (i, t) in answer.upcoming.iter().enumerate() {
                out += &format!("  {}. {}\n", i + 2, track_line(t));
            }
        }
        Some(PlaybackDto::Stop) => out += "  ■ stopped\n",
        Some(PlaybackDto::ClearEnqueued) => out += "  upcoming tracks cleared\n",
        None => {}
    }
    if out.is_empty() {
        out = "(nothing to say)\n".into();
    }
    out
}
