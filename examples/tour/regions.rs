//! Regions: nested namespaces, invalidated recursively in one constant-time step.

use std::error::Error;
use std::time::Duration;

use redis_caches::{DictCache, Region, Signal};

pub fn run() -> Result<(), Box<dyn Error>> {
    // A tree of its own, so the tour never touches other data.
    let root = Region::builder("").root("redis-caches-tour").build();
    let shop = root.region("shop");
    let books = shop
        .region_builder("books")
        .ttl(Duration::from_secs(60))
        .build();
    let scifi = books.region("scifi"); // inherits the 60 s TTL of "books"

    scifi.set("dune", &1965u16)?;
    scifi.set("title", "Dune")?;
    books.set("count", &1u32)?;
    println!("{:?} -> {:?}", scifi.key()?, scifi.get::<u16>("dune")?);
    println!("scifi ttl: {:?} (inherited)", scifi.ttl()?);
    let kids: Vec<String> = shop
        .children()
        .map(|c| c.map(|r| r.name()))
        .collect::<Result<_, _>>()?;
    println!("children of shop: {kids:?}");

    // All or nothing, with the TTL refreshed in the same script.
    scifi.transaction(|tx| {
        tx.set("foundation", &1951u16)?;
        tx.set("hyperion", &1989u16)?;
        println!("inside the transaction: {:?}", tx.get::<u16>("foundation")?);
        Ok::<_, redis_caches::Error>(())
    })?;
    println!("scifi now holds {} entries", scifi.len()?);

    // The same entries as a typed map, invalidated with the region too.
    let years: DictCache<String, u16> = scifi.dict();
    years.insert("neuromancer", &1984)?;
    println!(
        "via the DictCache view: hyperion = {:?}",
        years.get("hyperion")?
    );

    // Computed once, then read from Redis; kept in the shop's hash.
    let slow_square = shop
        .memo("square", |n: u64| {
            println!("  computing {n}^2");
            n * n
        })
        .build();
    println!("square(12) = {}", slow_square.call(12)?);
    println!("square(12) = {}", slow_square.call(12)?);

    // Invalidate the whole shop from the top, here through a signal.
    let catalog_changed = Signal::named("tour-catalog-changed");
    let subscription = shop.invalidate_on(&catalog_changed);
    catalog_changed.send()?;
    catalog_changed.disconnect(subscription);
    println!(
        "after the signal: dune = {:?}, books.count = {:?}",
        scifi.get::<u16>("dune")?,
        books.get::<u32>("count")?
    );

    root.invalidate()?; // whatever is left of the tour's tree, at once
    let deleted = root.reclaim()?; // the background thread would do this by itself
    println!("reclaimed {deleted} region hashes");
    Ok(())
}
