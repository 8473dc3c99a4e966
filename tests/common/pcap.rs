//! A reader for classic pcap files (what `tcpdump -w` writes): the test parses captured frames
//! with `etherparse`, so it needs nothing but the records' bytes.
//!
//! Accepts both byte orders and both timestamp resolutions (magic `a1b2c3d4` and `a1b23c4d`), and
//! Ethernet link type only; any other file is an error that says why.

/// Link type of Ethernet frames (LINKTYPE_ETHERNET).
const LINKTYPE_ETHERNET: u32 = 1;

/// The frames of a pcap file, in capture order; truncated records (snap length) are refused.
pub fn frames(file: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    if file.len() < 24 {
        return Err(format!(
            "{} bytes: too short for a pcap file header",
            file.len()
        ));
    }
    let magic = [file[0], file[1], file[2], file[3]];
    let big = match magic {
        [0xa1, 0xb2, 0xc3, 0xd4] | [0xa1, 0xb2, 0x3c, 0x4d] => true,
        [0xd4, 0xc3, 0xb2, 0xa1] | [0x4d, 0x3c, 0xb2, 0xa1] => false,
        _ => {
            return Err(format!(
                "not a pcap file (magic {magic:02x?}); pcapng is not read"
            ))
        }
    };
    let u32_at = |at: usize| -> u32 {
        let b = [file[at], file[at + 1], file[at + 2], file[at + 3]];
        if big {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        }
    };
    let linktype = u32_at(20) & 0x0fff_ffff;
    if linktype != LINKTYPE_ETHERNET {
        return Err(format!("link type {linktype}, expected Ethernet (1)"));
    }
    let mut out = Vec::new();
    let mut at = 24;
    while at < file.len() {
        if file.len() - at < 16 {
            return Err(format!("record header cut at byte {at}"));
        }
        let incl = u32_at(at + 8) as usize;
        let orig = u32_at(at + 12) as usize;
        let data = at + 16;
        if file.len() - data < incl {
            return Err(format!("record at byte {at} cut: {incl} bytes announced"));
        }
        if incl != orig {
            return Err(format!(
                "record at byte {at} truncated to {incl} of {orig} bytes: capture with -s 0"
            ));
        }
        out.push(file[data..data + incl].to_vec());
        at = data + incl;
    }
    Ok(out)
}
