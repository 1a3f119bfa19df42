//! Leader election: every copy campaigns; the leader works for a few seconds
//! and then resigns, so another copy is elected at once. Run two or three.
//!
//! `cargo run --example election` beside a sidecar on 127.0.0.1:13131.
use std::time::Duration;

use metaparticle_sync::{CampaignEvent, CampaignOptions, Client};
use tokio_stream::StreamExt;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let client = Client::new()?;
    let me = format!("rust-{}", std::process::id());
    let mut campaign = client.campaign_with(
        "scheduler",
        CampaignOptions::default().candidate(&me).value(format!("{me}:8080")),
    );

    loop {
        let event = tokio::select! {
            event = campaign.next() => event,
            _ = tokio::signal::ctrl_c() => return Ok(()), // dropping the campaign leaves it
        };
        let Some(event) = event else { return Ok(()) };
        match event? {
            CampaignEvent::LeaderChanged(leader) => {
                eprintln!(
                    "{me} follows {:?} (term {}, value {:?})",
                    leader.leader, leader.term, leader.value
                )
            }
            CampaignEvent::Deposed { term, loss } => match loss {
                Some(loss) => eprintln!("{me} lost term {term}: {loss}"),
                None => eprintln!("{me} stepped down from term {term}"),
            },
            CampaignEvent::Elected(leadership) => {
                eprintln!("{me} leads, term {}", leadership.term);
                tokio::select! {
                    _ = leadership.signal.lost() => {} // deposed: the next event says why
                    _ = tokio::signal::ctrl_c() => return Ok(()),
                    _ = tokio::time::sleep(Duration::from_secs(3)) => {
                        if let Err(err) = campaign.resign().await {
                            eprintln!("resign: {err}");
                        }
                    }
                }
            }
        }
    }
}
