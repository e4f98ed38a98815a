//! SetCache and SortedSetCache: shared sets with set algebra, and a leaderboard.

use std::error::Error;

use redis_caches::sorted_set::{InsertMode, Limit};
use redis_caches::{SetCache, SortedSetCache};

pub fn run() -> Result<(), Box<dyn Error>> {
    // A set: insert says whether the member was new, like HashSet::insert.
    let alice: SetCache<String> = SetCache::new(["tour", "likes", "alice"]);
    let bob: SetCache<String> = SetCache::new(["tour", "likes", "bob"]);
    let common: SetCache<String> = SetCache::new(["tour", "likes", "common"]);
    println!("alice likes tea (new): {}", alice.insert("tea")?);
    println!("alice likes tea (again): {}", alice.insert("tea")?);
    alice.extend(["jazz".to_string(), "chess".to_string()])?;
    bob.extend(["chess".to_string(), "tea".to_string(), "rugby".to_string()])?;
    println!(
        "alice has {} likes, contains chess: {}",
        alice.len()?,
        alice.contains("chess")?
    );

    // Set algebra runs in Redis: one command, one round trip.
    let mut both: Vec<String> = alice.intersection([&bob])?.into_iter().collect();
    both.sort();
    println!("alice and bob both like {both:?}");
    let mut either: Vec<String> = alice.union([&bob])?.into_iter().collect();
    either.sort();
    println!("together they like {either:?}");
    println!(
        "stored the common likes: {} members",
        alice.intersection_store([&bob], &common)?
    );

    // A sorted set as a leaderboard.
    let board: SortedSetCache<String> = SortedSetCache::new(["tour", "leaderboard"]);
    board.extend([
        ("ada".to_string(), 310.5),
        ("bob".to_string(), 120.0),
        ("cyd".to_string(), 250.0),
        ("dee".to_string(), 95.25),
    ])?;
    println!("bob scores 200 more: {}", board.incr_score("bob", 200.0)?);
    // A lower score never replaces a high score.
    board.insert_with("ada", 100.0, InsertMode::NewOrGreater)?;
    println!("top 3: {:?}", board.range_rev(0..3)?);
    println!(
        "ada's place: #{}",
        board.rank_rev("ada")?.map_or(0, |r| r + 1)
    );
    println!(
        "scores from 100 up, lowest first, first two: {:?}",
        board.range_by_score(100.0.., Limit::first(2))?
    );
    println!("knocked out (pop_min): {:?}", board.pop_min()?);
    for entry in board.iter_rev() {
        let (player, points) = entry?;
        println!("  {player:>4} {points:>7.2}");
    }

    for set in [&alice, &bob, &common] {
        set.clear()?;
    }
    board.clear()?;
    Ok(())
}
