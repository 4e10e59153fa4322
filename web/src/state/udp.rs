//! The UDP panel's state: the WebTransport session, single datagrams, and bursts over
//! WebTransport (UDP) beside the same burst over the WebSocket bridge (TCP). Every time comes
//! in from where it was taken (right before a send, first thing in a read), so the round-trip
//! times are the network's, not the page's.

use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use socklab_protocol::WebTransportInfo;
use yew::Reducible;

/// One transport's run of a burst.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Run {
    /// When each message was sent (`performance.now()`), by sequence number.
    pub sent: Vec<f64>,
    /// For each sequence number that came back: (arrival order, round-trip ms).
    pub back: HashMap<usize, (usize, f64)>,
    /// No more replies are awaited.
    pub done: bool,
}

impl Run {
    fn new(n: usize) -> Self {
        Run {
            sent: vec![0.0; n],
            ..Run::default()
        }
    }

    /// Records a reply. Once the run is done it takes none: what it called lost stays lost,
    /// so its summary and its cells never change after they are final.
    fn reply(&mut self, seq: usize, at_ms: f64) {
        if !self.done
            && let Some(sent) = self.sent.get(seq)
            && !self.back.contains_key(&seq)
        {
            let order = self.back.len();
            self.back.insert(seq, (order, (at_ms - sent).max(0.0)));
        }
    }

    /// The sequence numbers that came back after a later-sent one.
    pub fn late(&self) -> HashSet<usize> {
        let mut arrivals: Vec<(usize, usize)> =
            self.back.iter().map(|(s, (o, _))| (*o, *s)).collect();
        arrivals.sort_unstable();
        let mut max_seen = None;
        let mut late = HashSet::new();
        for (_, seq) in arrivals {
            match max_seen {
                Some(m) if seq < m => {
                    late.insert(seq);
                }
                _ => max_seen = Some(seq),
            }
        }
        late
    }

    /// The `p` quantile (0–1) of the round-trip times, in ms.
    pub fn rtt_percentile(&self, p: f64) -> Option<f64> {
        let mut rtts: Vec<f64> = self.back.values().map(|(_, r)| *r).collect();
        rtts.sort_unstable_by(f64::total_cmp);
        let i = ((rtts.len() as f64 - 1.0) * p).round() as usize;
        rtts.get(i).copied()
    }
}

/// Where the WebTransport session is.
#[derive(Debug, Clone, PartialEq)]
pub enum Status {
    /// Asking `/api/webtransport`, or the QUIC handshake.
    Connecting,
    /// Datagrams flow.
    Open,
    /// Closed or failed, with the reason in words.
    Closed(String),
}

/// The panel's state.
#[derive(Debug, Clone, PartialEq)]
pub struct Udp {
    /// The session.
    pub status: Status,
    /// `--udp-drop` as the server reported it.
    pub drop_percent: Option<f64>,
    /// The burst in flight or last finished: which one (messages carry it) and both runs.
    pub burst: u32,
    /// Its WebTransport run.
    pub udp: Option<Run>,
    /// Its WebSocket run.
    pub ws: Option<Run>,
    /// The last single datagram's reply and round trip, or its text when none came.
    pub last: Option<Result<(String, f64), String>>,
    /// The single datagram in flight, and when it was sent.
    single_sent: Option<(String, f64)>,
}

impl Default for Udp {
    fn default() -> Self {
        Udp {
            status: Status::Connecting,
            drop_percent: None,
            burst: 0,
            udp: None,
            ws: None,
            last: None,
            single_sent: None,
        }
    }
}

/// Something that happened to the UDP panel.
#[derive(Debug, Clone)]
pub enum Action {
    /// (Re)connecting.
    Connecting,
    /// `/api/webtransport`'s answer.
    Info(WebTransportInfo),
    /// The session is ready.
    Open,
    /// The session closed or failed, with the reason.
    Closed(String),
    /// A datagram came back at `at_ms`.
    Datagram { text: String, at_ms: f64 },
    /// A WebSocket reply to a burst came back at `at_ms`.
    WsReply { text: String, at_ms: f64 },
    /// Burst `id` of `n` messages starts.
    Burst(u32, usize),
    /// When each datagram of burst `id` was sent, by sequence number.
    UdpSent(u32, Vec<f64>),
    /// When each WebSocket message of burst `id` was sent.
    WsSent(u32, Vec<f64>),
    /// One datagram with this text was sent at this time.
    Single(String, f64),
    /// Its reply did not come in time.
    SingleTimeout,
    /// Burst `id`'s datagrams are waited for no longer: what is missing is lost.
    Finish(u32),
    /// Burst `id`'s WebSocket run is over: every reply came back, or the socket closed (TCP
    /// loses nothing, so only a closed socket leaves replies missing).
    WsDone(u32),
    /// Several of the above, in order (one animation frame's worth).
    Batch(Vec<Action>),
}

/// `u3-17` → (3, 17) for prefix `u`.
fn parse_tag(payload: &str, prefix: char) -> Option<(u32, usize)> {
    let rest = payload.strip_prefix(prefix)?;
    let (burst, seq) = rest.split_once('-')?;
    Some((burst.parse().ok()?, seq.parse().ok()?))
}

/// The echo's reply without its `[time]:` stamp.
fn payload(text: &str) -> &str {
    text.split_once("]:").map(|(_, p)| p).unwrap_or(text)
}

impl Udp {
    fn datagram(&mut self, text: String, at_ms: f64) {
        let payload = payload(&text);
        if let Some((burst, seq)) = parse_tag(payload, 'u') {
            if burst == self.burst
                && let Some(run) = self.udp.as_mut()
            {
                run.reply(seq, at_ms);
            }
        } else if let Some((sent, at)) = &self.single_sent
            && payload == sent
        {
            self.last = Some(Ok((text.clone(), (at_ms - at).max(0.0))));
            self.single_sent = None;
        }
    }

    /// Marks `run` of burst `id` done, if `id` is still the current burst.
    fn finish(burst: u32, run: Option<&mut Run>, id: u32) {
        if let Some(run) = run.filter(|_| id == burst) {
            run.done = true;
        }
    }
}

impl Reducible for Udp {
    type Action = Action;

    fn reduce(self: Rc<Self>, action: Action) -> Rc<Self> {
        let mut s = Rc::unwrap_or_clone(self);
        s.apply(action);
        Rc::new(s)
    }
}

impl Udp {
    fn apply(&mut self, action: Action) {
        let s = self;
        match action {
            Action::Connecting => s.status = Status::Connecting,
            Action::Batch(actions) => actions.into_iter().for_each(|a| s.apply(a)),
            Action::Info(info) => s.drop_percent = Some(info.udp_drop),
            Action::Open => s.status = Status::Open,
            Action::Closed(why) => s.status = Status::Closed(why),
            Action::Datagram { text, at_ms } => s.datagram(text, at_ms),
            Action::WsReply { text, at_ms } => {
                if let Some((burst, seq)) = parse_tag(payload(&text), 'w')
                    && burst == s.burst
                    && let Some(run) = s.ws.as_mut()
                {
                    run.reply(seq, at_ms);
                }
            }
            Action::Burst(id, n) => {
                s.burst = id;
                s.udp = Some(Run::new(n));
                s.ws = Some(Run::new(n));
            }
            Action::UdpSent(id, times) => {
                if let Some(run) = s.udp.as_mut().filter(|_| id == s.burst) {
                    run.sent = times;
                }
            }
            Action::WsSent(id, times) => {
                if let Some(run) = s.ws.as_mut().filter(|_| id == s.burst) {
                    run.sent = times;
                }
            }
            Action::Single(text, at) => {
                s.single_sent = Some((text, at));
                s.last = None;
            }
            Action::Finish(id) => Udp::finish(s.burst, s.udp.as_mut(), id),
            Action::WsDone(id) => Udp::finish(s.burst, s.ws.as_mut(), id),
            Action::SingleTimeout => {
                if let Some((text, _)) = s.single_sent.take() {
                    s.last = Some(Err(text));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(actions: Vec<Action>) -> Rc<Udp> {
        actions
            .into_iter()
            .fold(Rc::new(Udp::default()), |s, a| s.reduce(a))
    }

    #[test]
    fn burst_replies_are_timed_from_their_own_send_and_late_ones_found() {
        let s = run(vec![
            Action::Burst(1, 3),
            Action::Batch(vec![Action::UdpSent(1, vec![10.0, 11.0, 12.0])]),
            Action::Datagram {
                text: "[t]:u1-2".into(),
                at_ms: 15.0,
            },
            Action::Datagram {
                text: "[t]:u1-0".into(),
                at_ms: 16.0,
            },
            // An older burst's straggler is ignored.
            Action::Datagram {
                text: "[t]:u0-1".into(),
                at_ms: 17.0,
            },
            Action::Finish(1),
            // After the wait, a straggler is lost all the same.
            Action::Datagram {
                text: "[t]:u1-1".into(),
                at_ms: 4000.0,
            },
        ]);
        let udp = s.udp.as_ref().unwrap();
        assert_eq!(udp.back.len(), 2);
        assert_eq!(udp.back.get(&2), Some(&(0, 3.0)));
        assert_eq!(udp.back.get(&0), Some(&(1, 6.0)));
        assert_eq!(udp.late(), HashSet::from([0]));
        // The datagrams' wait is over; the WebSocket run goes on until its own end.
        assert!(udp.done && !s.ws.as_ref().unwrap().done);
        assert_eq!(udp.rtt_percentile(0.5), Some(6.0));
    }

    #[test]
    fn a_websocket_run_ends_on_its_own_and_only_for_the_current_burst() {
        let s = run(vec![
            Action::Burst(1, 2),
            Action::Burst(2, 2),
            Action::WsDone(1),
        ]);
        assert!(
            !s.ws.as_ref().unwrap().done,
            "an older burst's end is ignored"
        );
        let s = run(vec![Action::Burst(2, 2), Action::WsDone(2)]);
        assert!(s.ws.as_ref().unwrap().done && !s.udp.as_ref().unwrap().done);
    }

    #[test]
    fn a_single_datagram_gets_its_round_trip_or_is_called_lost() {
        let s = run(vec![
            Action::Single("hello".into(), 100.0),
            Action::Datagram {
                text: "[t]:hello".into(),
                at_ms: 101.5,
            },
        ]);
        assert_eq!(s.last, Some(Ok(("[t]:hello".into(), 1.5))));
        let s = run(vec![
            Action::Single("hello".into(), 100.0),
            Action::SingleTimeout,
        ]);
        assert_eq!(s.last, Some(Err("hello".into())));
    }
}
