//! A session's kept packets as a classic pcap file (`pcap-file`), link type `RAW` (each
//! record starts at its IP header, IPv4 or IPv6), with each packet's length on the wire, so
//! Wireshark marks the ones cut to `--capture-payload` bytes as such.

use pcap_file::DataLink;
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};

use super::store::Packet;

/// The pcap file of `packets` (in time order).
pub(crate) fn write(packets: &[&Packet]) -> Vec<u8> {
    let header = PcapHeader {
        datalink: DataLink::RAW,
        snaplen: 262_144,
        ..PcapHeader::default()
    };
    let mut out = Vec::new();
    // Writing to a Vec cannot fail: only a packet's fields can be refused, and ours fit.
    if let Ok(mut writer) = PcapWriter::with_header(&mut out, header) {
        for p in packets {
            let record = PcapPacket::new(p.at, p.orig_len, &p.data);
            if let Err(err) = writer.write_packet(&record) {
                tracing::warn!(cause = %err, "a packet could not be written to a pcap file");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use pcap_file::pcap::PcapReader;

    use super::*;

    #[test]
    fn packets_read_back_with_their_wire_length() {
        let p = Packet {
            at: Duration::from_micros(1_700_000_000_123_456),
            orig_len: 1500,
            data: vec![0x45; 40].into_boxed_slice(),
        };
        let file = write(&[&p, &p]);
        let mut reader = PcapReader::new(&file[..]).unwrap();
        assert_eq!(reader.header().datalink, DataLink::RAW);
        let first = reader.next_packet().unwrap().unwrap();
        assert_eq!((first.orig_len, first.data.len()), (1500, 40));
        assert_eq!(first.timestamp, p.at);
        assert!(reader.next_packet().unwrap().is_ok());
        assert!(reader.next_packet().is_none());
    }
}
