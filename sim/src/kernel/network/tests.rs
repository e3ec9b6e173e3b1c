use super::*;

fn network(devices: usize, all: &LinkSpec) -> Network {
    Network::new(devices, [[1; 32], [2; 32], [3; 32]], all)
}

fn loss(rate: f64) -> LinkSpec {
    LinkSpec {
        loss: Some(rate),
        ..LinkSpec::default()
    }
}

#[test]
fn a_link_rule_changes_its_link_only_and_all_links_rules_reach_it_too() {
    let mut net = network(1_000, &loss(0.1));
    net.set_link(3, 7, &loss(0.5));
    assert_eq!(net.model(3, 7).loss_ppm, 500_000);
    assert_eq!(net.model(7, 3).loss_ppm, 100_000, "directed");
    assert_eq!(net.model(999, 0).loss_ppm, 100_000);
    // A later all-links fault layers under the link's own rule, field by field.
    let slow = LinkSpec {
        latency: Some(crate::scenario::LatencySpec {
            min: crate::scenario::SimDuration::from_millis(100),
            max: crate::scenario::SimDuration::from_millis(100),
        }),
        ..LinkSpec::default()
    };
    net.change(None, &slow, false);
    assert_eq!(net.model(3, 7).latency_us_min, 100_000);
    assert_eq!(net.model(3, 7).loss_ppm, 500_000);
    net.heal(true);
    assert_eq!(net.model(3, 7).latency_us_min, 5_000, "the fault is healed");
    assert_eq!(
        net.model(3, 7).loss_ppm,
        500_000,
        "the scenario's rule stays"
    );
    // A thousand devices keep no per-link state beyond the one rule.
    assert_eq!(net.models_link.len(), 1);
}

#[test]
fn cuts_drop_until_restored_and_only_permanent_ones_survive_a_heal() {
    let mut net = network(4, &LinkSpec::default());
    net.cut(0, 1, false);
    net.cut(1, 2, true);
    let sent = |net: &mut Network, from, to| {
        net.transmit(Instant::from_micros(0), from, to, vec![1, 2, 3])
            .map(|deliveries| deliveries.len())
    };
    assert_eq!(sent(&mut net, 0, 1), Err(DropCause::Cut));
    assert_eq!(sent(&mut net, 1, 0), Ok(1), "one way only");
    net.heal(false);
    assert_eq!(sent(&mut net, 0, 1), Ok(1));
    assert_eq!(sent(&mut net, 1, 2), Err(DropCause::Cut));
    net.restore(1, 2);
    assert!(!net.is_cut(1, 2));
    assert_eq!(sent(&mut net, 1, 2), Ok(1));
}

#[test]
fn a_limited_link_sends_one_datagram_after_another_and_drops_what_would_wait_too_long() {
    let spec = LinkSpec {
        latency: Some(crate::scenario::LatencySpec {
            min: crate::scenario::SimDuration::from_millis(10),
            max: crate::scenario::SimDuration::from_millis(10),
        }),
        capacity_bytes_per_s: Some(1_000_000),
        queue_delay_max: Some(crate::scenario::SimDuration::from_millis(5)),
        ..LinkSpec::default()
    };
    let mut net = network(2, &spec);
    let start = Instant::from_millis(1_000);
    // 1,000 bytes take 1 ms at 1 MB/s: each leaves 1 ms after the one before, then 10 ms on
    // the wire; the seventh would wait 6 ms, past the 5 ms queue.
    let arrivals: Vec<Result<u64, DropCause>> = (0..7)
        .map(|_| {
            net.transmit(start, 0, 1, vec![0; 1_000])
                .map(|d| d[0].at.as_micros() - start.as_micros())
        })
        .collect();
    let ms = |m: u64| Ok(m * 1_000);
    assert_eq!(
        arrivals,
        vec![
            ms(11),
            ms(12),
            ms(13),
            ms(14),
            ms(15),
            ms(16),
            Err(DropCause::Queue)
        ]
    );
    assert_eq!(
        net.sure_latency_us(0, 1),
        None,
        "a queue makes no latency sure"
    );
    // The other direction has a queue of its own; once the link drains it waits for nothing.
    assert_eq!(
        net.transmit(start, 1, 0, vec![0; 1_000])
            .map(|d| d[0].at.as_micros()),
        Ok(start.as_micros() + 11_000)
    );
    let later = Instant::from_millis(2_000);
    assert_eq!(
        net.transmit(later, 0, 1, vec![0; 500])
            .map(|d| d[0].at.as_micros()),
        Ok(later.as_micros() + 10_500)
    );
}
