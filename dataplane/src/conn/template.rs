//! Persistence templates (`ipvsadm -p`): which real server a client network was sent to.
//!
//! As in IPVS a template is an entry of the connection table itself (state NONE, no flow keys),
//! found by (service slot, client address masked to the persistence prefix, port or 0). It
//! counts in its server's `DestLoad::persistent`. Connections scheduled through it hold it; it
//! expires its own timeout after the later of its creation and the end of its last connection.
//! Removing a held template (its server left the service) only unhashes it, so the next client
//! is scheduled afresh while the held connections run on.

use super::entry::{flag, Conn};
use super::hash::hash_template;
use super::state::ConnState;
use super::table::{ConnTable, OrigKey};
use super::{ConnId, InsertError};
use crate::flow::{Addr, Proto};
use crate::model::FwdMode;
use crate::sched::DestId;

/// What identifies a persistence template.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TemplateKey {
    /// The virtual service's slot.
    pub svc: u32,
    /// The client address masked to the persistence prefix.
    pub client: Addr,
    /// The virtual port, or 0 for a service persistent across ports.
    pub port: u16,
}

impl TemplateKey {
    /// The key of `client` for a service persistent per `/prefix_len` (IPv4 prefixes count
    /// within the IPv4 address: 24 means a /24).
    pub fn new(svc: u32, client: Addr, prefix_len: u8, port: u16) -> TemplateKey {
        let bits = if client.is_v4() {
            96 + u32::from(prefix_len.min(32))
        } else {
            u32::from(prefix_len.min(128))
        };
        let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
        TemplateKey {
            svc,
            client: Addr((u128::from_be_bytes(client.0) & mask).to_be_bytes()),
            port,
        }
    }
}

/// A template to record after scheduling the first connection of a client network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewTemplate {
    /// Its key.
    pub key: TemplateKey,
    /// The service's protocol.
    pub proto: Proto,
    /// The service's virtual address (for listings).
    pub vip: Addr,
    /// The chosen real server.
    pub dest: DestId,
    /// Its address.
    pub real: Addr,
    /// Its port.
    pub rport: u16,
    /// Its forwarding mode.
    pub mode: FwdMode,
    /// Persistence timeout, seconds.
    pub timeout_s: u32,
}

impl ConnTable {
    /// The live template for `key`.
    #[inline]
    pub fn find_template(&self, key: &TemplateKey) -> Option<ConnId> {
        let h = hash_template(self.seed, key.svc, &key.client, key.port);
        let slab = &self.slab;
        self.index
            .find(h, |r| {
                slab.get(r as usize).is_some_and(|e| {
                    let c = &e.conn;
                    c.flags & (flag::TEMPLATE | flag::DEAD | flag::LIVE)
                        == flag::TEMPLATE | flag::LIVE
                        && c.svc == key.svc
                        && c.vport == key.port
                        && c.client == key.client
                })
            })
            .map(ConnId)
    }

    /// Records a template, counted in its server's `persistent`; it expires `timeout_s` after
    /// `now_ms` unless a connection takes it first.
    pub fn insert_template(&mut self, t: NewTemplate, now_ms: u64) -> Result<ConnId, InsertError> {
        self.now_ms = self.now_ms.max(now_ms);
        if t.dest.index() >= self.loads.len() {
            return Err(InsertError::BadDest);
        }
        if self.find_template(&t.key).is_some() {
            return Err(InsertError::Exists);
        }
        let conn = Conn {
            client: t.key.client,
            vip: t.vip,
            vport: t.key.port,
            svc: t.key.svc,
            real: t.real,
            rport: t.rport,
            dest: t.dest,
            proto: t.proto,
            mode: t.mode,
            owner: self.core(),
            state: ConnState::None,
            timeout_s: t.timeout_s,
            expires_ms: now_ms.saturating_add(u64::from(t.timeout_s) * 1000),
            flags: flag::LIVE | flag::TEMPLATE,
            ..Conn::EMPTY
        };
        let h = self.template_hash_of(&conn);
        let id = self.place(conn, OrigKey::Skip, false, Some(h))?;
        self.loads[t.dest.index()].persistent += 1;
        self.note_binding(&conn, true);
        Ok(ConnId(id))
    }

    /// The index hash of template entry `c`.
    pub(super) fn template_hash_of(&self, c: &Conn) -> u64 {
        hash_template(self.seed, c.svc, &c.client, c.vport)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conn::{ConnTableConfig, NewConn};

    fn table() -> ConnTable {
        ConnTable::new(ConnTableConfig {
            capacity: 64,
            dest_capacity: 4,
            seed: Some(7),
            ..ConnTableConfig::default()
        })
    }

    fn tmpl(client: Addr, dest: u32) -> NewTemplate {
        NewTemplate {
            key: TemplateKey::new(1, client, 24, 443),
            proto: Proto::Tcp,
            vip: Addr::v4([192, 0, 2, 1]),
            dest: DestId(dest),
            real: Addr::v4([10, 0, 0, dest as u8]),
            rport: 443,
            mode: FwdMode::Nat,
            timeout_s: 300,
        }
    }

    fn conn(client: Addr, cport: u16, template: ConnId, dest: u32) -> NewConn {
        NewConn {
            proto: Proto::Tcp,
            client,
            cport,
            vip: Addr::v4([192, 0, 2, 1]),
            vport: 443,
            local: Addr::UNSPECIFIED,
            lport: 0,
            real: Addr::v4([10, 0, 0, dest as u8]),
            rport: 443,
            mode: FwdMode::Nat,
            dest: DestId(dest),
            svc: 1,
            template: Some(template),
        }
    }

    #[test]
    fn test_key_masks() {
        let k = TemplateKey::new(3, Addr::v4([198, 51, 100, 77]), 24, 80);
        assert_eq!(k.client, Addr::v4([198, 51, 100, 0]));
        let k = TemplateKey::new(3, Addr::v4([198, 51, 100, 77]), 0, 0);
        assert_eq!(k.client, Addr::v4([0, 0, 0, 0]));
        let v6: Addr = "2001:db8:1:2::5"
            .parse::<std::net::IpAddr>()
            .unwrap()
            .into();
        let k = TemplateKey::new(3, v6, 48, 0);
        let want: Addr = "2001:db8:1::".parse::<std::net::IpAddr>().unwrap().into();
        assert_eq!(k.client, want);
        assert_eq!(TemplateKey::new(3, v6, 128, 0).client, v6);
    }

    #[test]
    fn test_same_network_same_dest() {
        let mut t = table();
        let a = Addr::v4([198, 51, 100, 7]);
        let b = Addr::v4([198, 51, 100, 200]);
        let other = Addr::v4([198, 51, 101, 7]);
        let id = t.insert_template(tmpl(a, 2), 0).unwrap();
        assert_eq!(t.loads()[2].persistent, 1);
        let found = t.find_template(&TemplateKey::new(1, b, 24, 443)).unwrap();
        assert_eq!(found, id);
        assert_eq!(t.get(found).unwrap().dest, DestId(2));
        assert_eq!(t.find_template(&TemplateKey::new(1, other, 24, 443)), None);
        assert_eq!(t.find_template(&TemplateKey::new(2, a, 24, 443)), None);
        assert_eq!(t.find_template(&TemplateKey::new(1, a, 24, 0)), None);
        assert_eq!(t.insert_template(tmpl(b, 3), 0), Err(InsertError::Exists));
        // A template has no flow keys.
        assert_eq!(
            t.lookup(&conn(a, 1, id, 2).into_conn(ConnState::None, 0).orig_key()),
            None
        );
    }

    #[test]
    fn test_lives_while_held_then_timeout() {
        let mut t = table();
        let a = Addr::v4([198, 51, 100, 7]);
        let tid = t.insert_template(tmpl(a, 1), 0).unwrap();
        let c1 = t.insert(conn(a, 1000, tid, 1), 1000).unwrap();
        let c2 = t.insert(conn(a, 1001, tid, 1), 2000).unwrap();
        assert_eq!(t.get(tid).unwrap().template_refs(), 2);
        assert_eq!(t.get(c1).unwrap().template(), Some(tid));
        // Connections in NONE expire after 2 s, the template stays held until both are gone.
        assert_eq!(t.expire(3000, 10, |_, _| {}).removed, 1);
        assert_eq!(t.get(tid).unwrap().template_refs(), 1);
        assert!(t.remove(c2));
        // Last connection gone at t = 3 s: the template lives 300 s more.
        assert_eq!(t.get(tid).unwrap().expires_ms(), 303_000);
        assert_eq!(t.expire(302_999, 10, |_, _| {}).removed, 0);
        let mut seen = Vec::new();
        let r = t.expire(303_000, 10, |id, c| seen.push((id, c.is_template())));
        assert_eq!(r.removed, 1);
        assert_eq!(seen, vec![(tid, true)]);
        assert_eq!(t.loads()[1].persistent, 0);
        assert_eq!(t.loads()[1].conns(), 0);
        assert!(t.is_empty());
        assert_eq!(t.find_template(&TemplateKey::new(1, a, 24, 443)), None);
    }

    #[test]
    fn test_remove_held_template_unhashes_then_frees() {
        let mut t = table();
        let a = Addr::v4([198, 51, 100, 7]);
        let tid = t.insert_template(tmpl(a, 1), 0).unwrap();
        let c = t.insert(conn(a, 1000, tid, 1), 0).unwrap();
        assert!(t.remove(tid));
        assert_eq!(t.find_template(&TemplateKey::new(1, a, 24, 443)), None);
        assert_eq!(t.len(), 2);
        assert_eq!(t.loads()[1].persistent, 1);
        assert_eq!(
            t.insert(conn(a, 1001, tid, 1), 0),
            Err(InsertError::BadTemplate)
        );
        // A new template can take the key while the old one drains.
        let t2 = t.insert_template(tmpl(a, 2), 0).unwrap();
        assert_ne!(t2, tid);
        assert_eq!(t.loads()[2].persistent, 1);
        assert!(t.remove(c));
        assert_eq!(t.get(tid), None);
        assert_eq!(t.loads()[1].persistent, 0);
        assert_eq!(t.len(), 1);
    }
}
