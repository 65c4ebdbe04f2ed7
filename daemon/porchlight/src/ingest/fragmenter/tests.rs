use super::*;

fn setup(width: u32) -> TrackSetup {
    TrackSetup {
        video: VideoTrack {
            codec: "avc1.640028".into(),
            width,
            height: 720,
            clock_rate: 90_000,
            // A syntactically valid (empty-config) sample entry is enough here.
            sample_entry: b"\0\0\0\x08avc1".to_vec(),
        },
        audio: None,
    }
}

/// Feeds `count` frames at 30 fps with a keyframe every `gop` frames.
fn feed(
    f: &mut Fragmenter,
    s: &TrackSetup,
    start: i64,
    count: i64,
    gop: i64,
    jobs: &mut Vec<WriteJob>,
) {
    for i in 0..count {
        let key = i % gop == 0;
        let media = start + i * 3000;
        let arrival = 1_700_000_000_000_000 + media * 100 / 9;
        f.push_video(media, key, vec![0u8; 100], arrival, key.then_some(s), jobs);
    }
}

fn fragments(jobs: &[WriteJob]) -> Vec<&FragmentJob> {
    jobs.iter()
        .filter_map(|j| match j {
            WriteJob::Fragment(f) => Some(f),
            _ => None,
        })
        .collect()
}

#[test]
fn one_fragment_per_gop_and_frames_add_up() {
    let s = setup(1280);
    let mut f = Fragmenter::new(60_000_000);
    let mut jobs = Vec::new();
    feed(&mut f, &s, 0, 95, 30, &mut jobs);
    f.finish(&mut jobs);
    assert!(matches!(jobs.first(), Some(WriteJob::StartSegment(_))));
    assert!(matches!(jobs.last(), Some(WriteJob::EndSegment)));
    let frags = fragments(&jobs);
    assert_eq!(frags.len(), 4);
    assert_eq!(frags.iter().map(|f| f.frames).sum::<u32>(), 95);
    assert!(frags.iter().all(|f| f.starts_with_key));
    assert_eq!(frags[1].media_start, 90_000);
    assert_eq!(frags[0].duration_us, 1_000_000);
    // The header really is a moof whose trun covers exactly the payload.
    let moof = &frags[0].header[..frags[0].header.len() - 8]; // minus the mdat header
    let info = porchlight_mp4::parse_moof(moof, 0).expect("valid moof");
    assert_eq!(info.tracks[0].samples.len(), 30);
    assert!(info.tracks[0].samples.iter().all(|s| s.duration == 3000));
}

#[test]
fn frames_before_the_first_keyframe_are_skipped() {
    let s = setup(1280);
    let mut f = Fragmenter::new(60_000_000);
    let mut jobs = Vec::new();
    for i in 0..5 {
        f.push_video(i * 3000, false, vec![1; 10], 0, None, &mut jobs);
    }
    assert!(jobs.is_empty());
    assert_eq!(f.frames_before_keyframe, 5);
    feed(&mut f, &s, 15_000, 31, 30, &mut jobs);
    assert_eq!(fragments(&jobs).len(), 1);
}

#[test]
fn segments_rotate_at_keyframes_after_the_duration() {
    let s = setup(1280);
    let mut f = Fragmenter::new(2_000_000);
    let mut jobs = Vec::new();
    feed(&mut f, &s, 0, 181, 30, &mut jobs);
    let starts = jobs
        .iter()
        .filter(|j| matches!(j, WriteJob::StartSegment(_)))
        .count();
    assert_eq!(
        starts, 4,
        "6 s at 2 s per segment, and the keyframe at 6 s opens a fourth"
    );
    // Fragment sequence numbers restart in each segment.
    let mut seqs = Vec::new();
    for job in &jobs {
        if let WriteJob::Fragment(fr) = job {
            seqs.push(fr.seq);
        }
    }
    assert_eq!(&seqs[..4], &[1, 2, 1, 2]);
}

#[test]
fn new_parameters_start_a_new_segment() {
    let mut f = Fragmenter::new(60_000_000);
    let mut jobs = Vec::new();
    feed(&mut f, &setup(1280), 0, 30, 30, &mut jobs);
    feed(&mut f, &setup(640), 90_000, 31, 30, &mut jobs);
    let widths: Vec<u32> = jobs
        .iter()
        .filter_map(|j| match j {
            WriteJob::StartSegment(s) => Some(s.setup.video.width),
            _ => None,
        })
        .collect();
    assert_eq!(widths, vec![1280, 640]);
}

#[test]
fn a_camera_without_keyframes_still_gets_bounded_fragments() {
    let s = setup(1280);
    let mut f = Fragmenter::new(600_000_000);
    let mut jobs = Vec::new();
    // One keyframe, then 40 s of P-frames.
    feed(&mut f, &s, 0, 1200, 100_000, &mut jobs);
    f.finish(&mut jobs);
    let frags = fragments(&jobs);
    assert!(!frags.is_empty(), "must cut fragments without keyframes");
    assert!(frags.iter().all(|f| f.duration_us <= MAX_GOP_US + 40_000));
    assert!(!frags[1].starts_with_key);
}
