use std::time::Duration;

use super::*;

fn q() -> WorkQueue<&'static str> {
    WorkQueue::new("test")
}

/// Takes every key that is ready now, without waiting.
async fn ready(q: &WorkQueue<&'static str>) -> Vec<&'static str> {
    let mut out = Vec::new();
    while let Ok(Some(k)) = tokio::time::timeout(Duration::from_millis(1), q.get()).await {
        out.push(k);
    }
    out
}

/// One step of a table case.
#[derive(Debug, Clone, Copy)]
enum Op {
    Add(&'static str),
    /// Take the next key and keep it "processing".
    Get(&'static str),
    Done(&'static str),
    ShutDown,
}

#[tokio::test(start_paused = true)]
async fn queue_semantics_follow_client_go() {
    use Op::*;
    // (name, operations, keys handed out afterwards, in order)
    let cases: &[(&str, &[Op], &[&str])] = &[
        (
            "keys come out in the order they went in",
            &[Add("a"), Add("b")],
            &["a", "b"],
        ),
        (
            "a waiting key is not queued twice",
            &[Add("a"), Add("b"), Add("a")],
            &["a", "b"],
        ),
        (
            "a key added while processing waits for done",
            &[Add("a"), Get("a"), Add("a")],
            &[],
        ),
        (
            "done queues a key that was added while processing, once",
            &[Add("a"), Get("a"), Add("a"), Add("a"), Done("a")],
            &["a"],
        ),
        (
            "done of a clean key queues nothing",
            &[Add("a"), Get("a"), Done("a")],
            &[],
        ),
        (
            "other keys flow while one is processing",
            &[Add("a"), Get("a"), Add("a"), Add("b")],
            &["b"],
        ),
        (
            "after shutdown no key is accepted but queued ones are handed out",
            &[Add("a"), ShutDown, Add("b")],
            &["a"],
        ),
    ];
    for (name, ops, want) in cases {
        let q = q();
        for op in ops.iter() {
            match *op {
                Add(k) => q.add(k),
                Get(k) => assert_eq!(q.get().await, Some(k), "{name}: {op:?}"),
                Done(k) => q.done(&k),
                ShutDown => q.shut_down(),
            }
        }
        assert_eq!(ready(&q).await, *want, "{name}");
    }
}

#[tokio::test(start_paused = true)]
async fn get_returns_none_once_shut_down_and_empty() {
    let q = q();
    q.add("a");
    q.shut_down();
    assert_eq!(q.get().await, Some("a"));
    assert_eq!(q.get().await, None);
}

#[tokio::test(start_paused = true)]
async fn a_waiting_get_wakes_on_add_and_on_shutdown() {
    let q = q();
    let getter = tokio::spawn({
        let q = q.clone();
        async move { q.get().await }
    });
    tokio::task::yield_now().await;
    q.add("x");
    assert_eq!(getter.await.unwrap(), Some("x"));
    let getter = tokio::spawn({
        let q = q.clone();
        async move { q.get().await }
    });
    tokio::task::yield_now().await;
    q.shut_down();
    assert_eq!(getter.await.unwrap(), None);
}

#[tokio::test(start_paused = true)]
async fn delayed_keys_come_out_when_due_and_the_earlier_due_time_wins() {
    let q = q();
    let start = Instant::now();
    q.add_after("late", Duration::from_secs(10));
    q.add_after("soon", Duration::from_secs(2));
    q.add_after("late", Duration::from_secs(5)); // earlier: wins
    q.add_after("soon", Duration::from_secs(8)); // later: ignored
    assert!(ready(&q).await.is_empty());
    assert_eq!(q.get().await, Some("soon"));
    assert_eq!(start.elapsed().as_secs(), 2);
    assert_eq!(q.get().await, Some("late"));
    assert_eq!(start.elapsed().as_secs(), 5);
}

#[tokio::test(start_paused = true)]
async fn an_immediate_add_of_a_delayed_key_queues_it_now_and_once() {
    let q = q();
    q.add_after("a", Duration::from_secs(60));
    q.add("a");
    assert_eq!(ready(&q).await, vec!["a"]);
    tokio::time::advance(Duration::from_secs(61)).await;
    assert!(ready(&q).await.is_empty(), "the delayed copy was replaced");
}

#[test]
fn per_item_backoff_doubles_from_5ms_to_1000s() {
    let l = RateLimit::default();
    let cases = [
        (0, Duration::from_millis(5)),
        (1, Duration::from_millis(10)),
        (2, Duration::from_millis(20)),
        (10, Duration::from_millis(5 * 1024)),
        (17, Duration::from_millis(655_360)),
        (18, Duration::from_secs(1000)),
        (200, Duration::from_secs(1000)),
    ];
    for (failures, want) in cases {
        assert_eq!(l.backoff(failures), want, "after {failures} failures");
    }
}

#[tokio::test(start_paused = true)]
async fn rate_limited_adds_back_off_per_key_and_forget_resets() {
    let q = q();
    for expected_ms in [5u64, 10, 20, 40] {
        let t = Instant::now();
        q.add_rate_limited("k");
        assert_eq!(q.get().await, Some("k"));
        assert_eq!(t.elapsed(), Duration::from_millis(expected_ms));
        q.done(&"k");
    }
    assert_eq!(q.num_requeues(&"k"), 4);
    q.forget(&"k");
    assert_eq!(q.num_requeues(&"k"), 0);
    let t = Instant::now();
    q.add_rate_limited("k");
    assert_eq!(q.get().await, Some("k"));
    assert_eq!(t.elapsed(), Duration::from_millis(5));
}

#[tokio::test(start_paused = true)]
async fn the_overall_bucket_limits_a_burst_of_new_keys() {
    let limit = RateLimit {
        qps: 10.0,
        burst: 3,
        ..RateLimit::default()
    };
    let q: WorkQueue<u32> = WorkQueue::with_rate_limit("bucket", limit);
    let start = Instant::now();
    for k in 0..5 {
        q.add_rate_limited(k);
    }
    let mut at = Vec::new();
    for _ in 0..5 {
        q.get().await.unwrap();
        at.push(start.elapsed().as_millis());
    }
    // Three tokens at once (each still waits its own 5 ms), then one per 100 ms.
    assert_eq!(at, vec![5, 5, 5, 100, 200]);
}

#[tokio::test(start_paused = true)]
async fn no_two_workers_ever_hold_the_same_key() {
    let q: WorkQueue<u32> = WorkQueue::new("workers");
    let held = Arc::new(Mutex::new(HashSet::new()));
    let seen = Arc::new(Mutex::new(0u32));
    let mut workers = Vec::new();
    for _ in 0..4 {
        let (q, held, seen) = (q.clone(), held.clone(), seen.clone());
        workers.push(tokio::spawn(async move {
            while let Some(k) = q.get().await {
                assert!(
                    held.lock().unwrap().insert(k),
                    "key {k} handed out twice at once"
                );
                tokio::time::sleep(Duration::from_millis(3)).await;
                held.lock().unwrap().remove(&k);
                *seen.lock().unwrap() += 1;
                q.done(&k);
            }
        }));
    }
    for round in 0..50u32 {
        for k in 0..5 {
            q.add(k);
        }
        tokio::time::sleep(Duration::from_millis(1 + (round % 3) as u64)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    q.shut_down();
    for w in workers {
        w.await.unwrap();
    }
    assert!(*seen.lock().unwrap() >= 5);
}

#[tokio::test(start_paused = true)]
async fn drained_waits_for_keys_being_processed() {
    let q = q();
    q.add("a");
    let k = q.get().await.unwrap();
    q.shut_down();
    let drained = tokio::spawn({
        let q = q.clone();
        async move { q.drained().await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!drained.is_finished(), "a key is still being processed");
    q.done(&k);
    tokio::time::timeout(Duration::from_secs(1), drained)
        .await
        .expect("drained after done")
        .unwrap();
}

#[tokio::test(start_paused = true)]
async fn shut_down_now_drops_queued_and_delayed_keys() {
    let q = q();
    q.add("a");
    q.add("b");
    q.add_after("c", Duration::from_secs(1));
    let a = q.get().await.unwrap();
    q.add("a"); // dirty while processing
    q.shut_down_now();
    assert_eq!(q.get().await, None);
    q.done(&a);
    assert_eq!(
        q.get().await,
        None,
        "a dirty key is not queued again after shutdown"
    );
}
