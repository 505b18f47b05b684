//! A DNS server on 127.0.0.1 (UDP) answering from records the test sets: SRV, A, AAAA, MX and
//! NS. A name it has no records for is NXDOMAIN; a known name asked for another type gets an
//! empty answer. TTLs are 0, so nothing is cached. Every question is recorded.

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, MX, NS, SRV};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use tokio::net::UdpSocket;
use tokio::task::JoinHandle;

use crate::server::lock;

type Records = HashMap<String, Vec<RData>>;

pub struct DnsDouble {
    addr: SocketAddr,
    records: Arc<Mutex<Records>>,
    questions: Arc<Mutex<Vec<(String, RecordType)>>>,
    task: JoinHandle<()>,
}

impl Drop for DnsDouble {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Names are compared lowercased and fully qualified (`a.example.`).
fn key(name: &str) -> String {
    let n = name.to_ascii_lowercase();
    if n.ends_with('.') { n } else { format!("{n}.") }
}

fn name(s: &str) -> Name {
    Name::from_str(&key(s)).expect("a valid DNS name")
}

impl DnsDouble {
    pub async fn start() -> DnsDouble {
        let socket = UdpSocket::bind("127.0.0.1:0")
            .await
            .expect("binding the DNS double on 127.0.0.1:0");
        let addr = socket.local_addr().expect("local address");
        let records: Arc<Mutex<Records>> = Arc::default();
        let questions: Arc<Mutex<Vec<(String, RecordType)>>> = Arc::default();
        let (r, q) = (records.clone(), questions.clone());
        let task = tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            loop {
                let Ok((n, peer)) = socket.recv_from(&mut buf).await else {
                    return;
                };
                let Ok(query) = Message::from_vec(&buf[..n]) else {
                    continue;
                };
                let answer = answer(&query, &r, &q);
                if let Ok(bytes) = answer.to_vec() {
                    let _ = socket.send_to(&bytes, peer).await;
                }
            }
        });
        DnsDouble {
            addr,
            records,
            questions,
            task,
        }
    }

    /// For `--discovery.dns-server`.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn set(&self, n: &str, data: Vec<RData>) {
        lock(&self.records).insert(key(n), data);
    }

    /// SRV records: (target host, port).
    pub fn set_srv(&self, n: &str, records: &[(&str, u16)]) {
        self.set(
            n,
            records
                .iter()
                .map(|(t, p)| RData::SRV(SRV::new(0, 0, *p, name(t))))
                .collect(),
        );
    }

    pub fn set_a(&self, n: &str, ips: &[Ipv4Addr]) {
        self.set(n, ips.iter().map(|ip| RData::A(A(*ip))).collect());
    }

    pub fn set_aaaa(&self, n: &str, ips: &[Ipv6Addr]) {
        self.set(n, ips.iter().map(|ip| RData::AAAA(AAAA(*ip))).collect());
    }

    pub fn set_mx(&self, n: &str, hosts: &[&str]) {
        self.set(
            n,
            hosts
                .iter()
                .enumerate()
                .map(|(i, h)| RData::MX(MX::new(i as u16 * 10, name(h))))
                .collect(),
        );
    }

    pub fn set_ns(&self, n: &str, hosts: &[&str]) {
        self.set(n, hosts.iter().map(|h| RData::NS(NS(name(h)))).collect());
    }

    /// Forgets a name: it is NXDOMAIN from now on.
    pub fn remove(&self, n: &str) {
        lock(&self.records).remove(&key(n));
    }

    /// Every question so far: (name, type).
    pub fn questions(&self) -> Vec<(String, RecordType)> {
        lock(&self.questions).clone()
    }
}

fn answer(
    query: &Message,
    records: &Mutex<Records>,
    questions: &Mutex<Vec<(String, RecordType)>>,
) -> Message {
    let mut out = Message::response(query.metadata.id, OpCode::Query);
    out.metadata.message_type = MessageType::Response;
    out.metadata.recursion_desired = query.metadata.recursion_desired;
    out.metadata.recursion_available = true;
    out.metadata.authoritative = true;
    let records = lock(records);
    for q in &query.queries {
        out.queries.push(q.clone());
        let n = key(&q.name().to_ascii());
        lock(questions).push((n.clone(), q.query_type()));
        match records.get(&n) {
            None => out.metadata.response_code = ResponseCode::NXDomain,
            Some(data) => {
                for d in data.iter().filter(|d| d.record_type() == q.query_type()) {
                    out.answers
                        .push(Record::from_rdata(q.name().clone(), 0, d.clone()));
                }
            }
        }
    }
    out
}
