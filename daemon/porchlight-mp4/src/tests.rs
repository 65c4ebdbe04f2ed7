use super::*;

fn init_bytes() -> Vec<u8> {
    let mut out = Vec::new();
    write_init_segment(
        &[
            TrackConfig {
                track_id: 1,
                kind: TrackKind::Video {
                    width: 640,
                    height: 360,
                },
                timescale: 90_000,
                sample_entry: b"\0\0\0\x10avc1\0\0\0\0\0\0\0\x01".to_vec(),
            },
            TrackConfig {
                track_id: 2,
                kind: TrackKind::Audio {
                    channels: 1,
                    sample_rate: 8000,
                },
                timescale: 8000,
                sample_entry: g711_sample_entry(G711Law::Mu, 8000, 1),
            },
        ],
        &mut out,
    );
    out
}

/// A segment: init plus `fragments` fragments of 3 video + 2 audio samples.
fn segment(fragments: u32) -> (Vec<u8>, Vec<u64>) {
    let mut file = init_bytes();
    let mut ends = vec![file.len() as u64];
    for seq in 1..=fragments {
        let video: Vec<Sample> = (0..3)
            .map(|i| Sample {
                duration: 3000,
                size: 10 + i,
                is_sync: i == 0,
                composition_offset: 0,
            })
            .collect();
        let audio = vec![
            Sample {
                duration: 160,
                size: 160,
                is_sync: true,
                composition_offset: 0
            };
            2
        ];
        let trafs = [
            TrackFragment {
                track_id: 1,
                base_media_decode_time: u64::from(seq - 1) * 9000,
                sample_description_index: 1,
                samples: &video,
            },
            TrackFragment {
                track_id: 2,
                base_media_decode_time: u64::from(seq - 1) * 320,
                sample_description_index: 1,
                samples: &audio,
            },
        ];
        let mut header = Vec::new();
        let total = write_fragment_header(seq, &trafs, &mut header);
        let data_len: u32 = video.iter().chain(&audio).map(|s| s.size).sum();
        assert_eq!(total, header.len() as u64 + u64::from(data_len));
        file.extend_from_slice(&header);
        file.extend(std::iter::repeat_n(seq as u8, data_len as usize));
        ends.push(file.len() as u64);
    }
    (file, ends)
}

#[test]
fn init_round_trips() {
    let info = parse_init(&init_bytes()).expect("parses");
    assert_eq!(info.tracks.len(), 2);
    assert_eq!(info.tracks[0].timescale, 90_000);
    assert_eq!(&info.tracks[0].handler, b"vide");
    assert_eq!(&info.tracks[0].sample_entry_type, b"avc1");
    assert_eq!(&info.tracks[1].handler, b"soun");
    assert_eq!(&info.tracks[1].sample_entry_type, b"ulaw");
    assert_eq!(info.video_track().map(|t| t.track_id), Some(1));
}

#[test]
fn fragments_round_trip_through_the_scanner() {
    let (file, ends) = segment(3);
    let scan = scan_segment(std::io::Cursor::new(&file), file.len() as u64).expect("scan");
    assert_eq!(scan.valid_len, file.len() as u64);
    assert_eq!(scan.init_len, ends[0]);
    assert_eq!(scan.fragments.len(), 3);
    let second = &scan.fragments[1];
    assert_eq!(
        (second.offset, second.offset + second.length),
        (ends[1], ends[2])
    );
    assert_eq!(second.sequence_number, 2);
    assert_eq!(second.video_decode_time, 9000);
    assert_eq!(second.video_duration, 9000);
    assert_eq!((second.video_samples, second.audio_samples), (3, 2));
    assert!(second.starts_with_sync);
}

#[test]
fn moof_parses_back_to_what_was_written() {
    let (file, ends) = segment(1);
    let boxes = top_level_boxes(std::io::Cursor::new(&file), file.len() as u64).expect("boxes");
    let types: Vec<&[u8; 4]> = boxes.iter().map(|b| &b.box_type).collect();
    assert_eq!(types, vec![b"ftyp", b"moov", b"moof", b"mdat"]);
    let moof = boxes[2];
    let info = parse_moof(
        &file[moof.offset as usize..moof.end() as usize],
        moof.offset,
    )
    .expect("moof");
    assert_eq!(
        info.tracks[0]
            .samples
            .iter()
            .map(|s| s.size)
            .collect::<Vec<_>>(),
        vec![10, 11, 12]
    );
    assert_eq!(info.tracks[0].data_offset_in_file, boxes[3].offset + 8);
    assert_eq!(info.tracks[1].data_offset_in_file, boxes[3].offset + 8 + 33);
    assert!(info.tracks[0].samples[0].is_sync && !info.tracks[0].samples[1].is_sync);
    assert_eq!(ends.len(), 2);
}

#[test]
fn every_truncation_keeps_exactly_the_whole_fragments() {
    let (file, ends) = segment(3);
    for cut in 0..=file.len() {
        let result = scan_segment(std::io::Cursor::new(&file[..cut]), cut as u64);
        if (cut as u64) < ends[0] {
            assert!(result.is_err(), "cut {cut}: an incomplete init is an error");
            continue;
        }
        let scan = result.expect("init complete");
        let expected = ends
            .iter()
            .copied()
            .filter(|&e| e <= cut as u64)
            .max()
            .unwrap_or(0);
        assert_eq!(scan.valid_len, expected, "cut at {cut}");
        assert_eq!(
            scan.fragments.len(),
            ends.iter().filter(|&&e| e <= cut as u64).count() - 1
        );
    }
}

#[test]
fn garbage_never_panics() {
    let (file, _) = segment(2);
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..5000 {
        let mut damaged = file.clone();
        for _ in 0..(next() % 8 + 1) {
            let at = (next() as usize) % damaged.len();
            damaged[at] = next() as u8;
        }
        let len = (next() as usize) % (damaged.len() + 1);
        let _ = scan_segment(std::io::Cursor::new(&damaged[..len]), len as u64);
        let _ = parse_init(&damaged[..len]);
        let _ = parse_moof(&damaged[..len], 0);
        let random: Vec<u8> = (0..(next() % 256)).map(|_| next() as u8).collect();
        let _ = scan_segment(std::io::Cursor::new(&random), random.len() as u64);
        let _ = parse_moof(&random, 0);
    }
}

#[test]
fn impossible_box_sizes_are_errors() {
    // size smaller than the header
    let bad = b"\0\0\0\x04moov";
    assert!(matches!(parse_init(bad), Err(Mp4Error::Malformed { .. })));
    // a child box claiming more than its parent holds
    let mut moov = Vec::new();
    boxes::write_box(&mut moov, b"moov", |out| {
        out.extend_from_slice(b"\0\0\xff\xfftrak")
    });
    assert!(parse_init(&moov).is_err());
    // a huge moov is refused before allocating
    let mut huge = b"\0\0\0\x01moov".to_vec();
    huge.extend_from_slice(&(1u64 << 40).to_be_bytes());
    assert!(scan_segment(std::io::Cursor::new(&huge), 1 << 41).is_err());
}

#[test]
fn g711_entry_layout() {
    let entry = g711_sample_entry(G711Law::A, 8000, 1);
    assert_eq!(entry.len(), 36);
    assert_eq!(&entry[4..8], b"alaw");
    assert_eq!(
        u32::from_be_bytes([entry[32], entry[33], entry[34], entry[35]]) >> 16,
        8000
    );
}

fn sample_seal_contents() -> SealContents {
    SealContents {
        description: ExportDescription {
            unit_name: "porch-box".into(),
            unit_url: "https://porch.lan:8080".into(),
            unit_mac: String::new(),
            unit_time: ISO_EPOCH_OFFSET_S + 1_790_000_000,
            operator: "owner".into(),
            sources: vec![ExportSource {
                track_id: 1,
                name: "front door".into(),
                url: "rtsp://cam/stream1".into(),
                ..Default::default()
            }],
        },
        start_times: vec![TrackStartTime {
            track_id: 1,
            start_time: WINDOWS_EPOCH_OFFSET_100NS + 17_900_000_000_000_000,
        }],
        certificate_der: vec![0x30, 0x03, 0x02, 0x01, 0x05],
        algorithm_der: Some(vec![0x30, 0x00]),
        user_information: Some("export 42".into()),
    }
}

#[test]
fn seal_round_trips_and_locates_its_signature() {
    let contents = sample_seal_contents();
    let mut file = init_bytes();
    let mut seal = write_seal(&contents, 71);
    let zeroed = seal.bytes.clone();
    seal.set_signature(&[0xab; 71]).expect("right length");
    assert!(seal.set_signature(&[1; 70]).is_err());
    let seal_start = file.len() as u64;
    file.extend_from_slice(&seal.bytes);

    let found = read_seal(std::io::Cursor::new(&file), file.len() as u64).expect("seal");
    assert_eq!(found.contents, contents);
    assert_eq!(found.signature, vec![0xab; 71]);
    assert_eq!(found.signing_instances, 1);
    // Zeroing the located range gives back exactly the bytes that were signed.
    let range = found.signature_in_file.clone();
    file[range.start as usize..range.end as usize].fill(0);
    assert_eq!(&file[seal_start as usize..], &zeroed[..]);
}

#[test]
fn damaged_seals_are_errors_not_panics() {
    let mut file = init_bytes();
    assert!(matches!(
        read_seal(std::io::Cursor::new(&file), file.len() as u64),
        Err(Mp4Error::Missing(_))
    ));
    let seal = write_seal(&sample_seal_contents(), 64);
    let start = file.len();
    file.extend_from_slice(&seal.bytes);
    let mut state = 7u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..2000 {
        let mut damaged = file.clone();
        for _ in 0..(next() % 4 + 1) {
            let at = start + (next() as usize) % (damaged.len() - start);
            damaged[at] = next() as u8;
        }
        let len = start + (next() as usize) % (damaged.len() - start + 1);
        let _ = read_seal(std::io::Cursor::new(&damaged[..len]), len as u64);
    }
}

/// Found by the fmp4_recovery fuzzer: a 64-bit box size near `u64::MAX`
/// made a box's end wrap around (a panic in debug builds; in release, a
/// box "ending" before it starts, which recovery could take as a fragment).
#[test]
fn huge_64_bit_box_sizes_never_wrap() {
    let huge_box = |box_type: &[u8; 4]| {
        let mut b = b"\0\0\0\x01".to_vec();
        b.extend_from_slice(box_type);
        b.extend_from_slice(&u64::MAX.to_be_bytes());
        b
    };
    // The fuzzer's input: an ftyp, then a box claiming u64::MAX bytes.
    let mut file = Vec::new();
    boxes::write_box(&mut file, b"ftyp", |out| out.extend_from_slice(&[0; 24]));
    file.extend_from_slice(&huge_box(b"moov"));
    assert!(scan_segment(std::io::Cursor::new(&file), file.len() as u64).is_err());

    // After a whole init and fragment: a huge moof, or a moof and a huge mdat.
    let (whole, ends) = segment(1);
    for tail in [huge_box(b"moof"), {
        let mut t = whole[ends[0] as usize..ends[1] as usize].to_vec();
        let moof_len = u32::from_be_bytes([t[0], t[1], t[2], t[3]]) as usize;
        t.truncate(moof_len);
        t.extend_from_slice(&huge_box(b"mdat"));
        t
    }] {
        let mut file = whole.clone();
        file.extend_from_slice(&tail);
        let scan = scan_segment(std::io::Cursor::new(&file), file.len() as u64).expect("scan");
        assert_eq!(scan.fragments.len(), 1);
        assert_eq!(scan.valid_len, ends[1]);
    }

    // A child box inside the moov.
    let mut moov = Vec::new();
    boxes::write_box(&mut moov, b"moov", |out| {
        out.extend_from_slice(&huge_box(b"trak"))
    });
    assert!(parse_init(&moov).is_err());
}

/// Samples with no per-sample fields take no bytes, so only a cap on the
/// moof's total stops a few hundred bytes from asking for gigabytes.
#[test]
fn samples_are_capped_per_moof_not_only_per_run() {
    let traf = |track_id: u32, count: u32| {
        let mut t = Vec::new();
        boxes::write_box(&mut t, b"traf", |out| {
            boxes::write_box(out, b"tfhd", |b| {
                b.extend_from_slice(&[0; 4]);
                b.extend_from_slice(&track_id.to_be_bytes());
            });
            boxes::write_box(out, b"tfdt", |b| b.extend_from_slice(&[0; 8]));
            boxes::write_box(out, b"trun", |b| {
                b.extend_from_slice(&[0; 4]);
                b.extend_from_slice(&count.to_be_bytes());
            });
        });
        t
    };
    let moof = |trafs: &[Vec<u8>]| {
        let mut m = Vec::new();
        boxes::write_box(&mut m, b"moof", |out| {
            boxes::write_box(out, b"mfhd", |b| {
                b.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 1])
            });
            trafs.iter().for_each(|t| out.extend_from_slice(t));
        });
        m
    };
    let one = moof(&[traf(1, 1_000_000)]);
    assert_eq!(
        parse_moof(&one, 0).expect("at the cap").tracks[0]
            .samples
            .len(),
        1_000_000
    );
    let many: Vec<Vec<u8>> = (1..=50).map(|id| traf(id, 1_000_000)).collect();
    assert!(matches!(
        parse_moof(&moof(&many), 0),
        Err(Mp4Error::Malformed { .. })
    ));
}
