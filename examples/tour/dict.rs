//! DictCache: a typed map in one Redis hash, used like a HashMap.

use std::error::Error;

use redis_caches::DictCache;

pub fn run() -> Result<(), Box<dyn Error>> {
    // Keys are parts joined with '.': this hash is `tour.ages`.
    let ages: DictCache<String, u32> = DictCache::new(["tour", "ages"]);
    ages.clear()?;
    println!("handle: {ages:?}");

    // `insert` returns the value it replaced, like HashMap::insert (one MULTI/EXEC).
    println!("insert ada 36 -> {:?}", ages.insert("ada", &36)?);
    println!("insert ada 37 -> {:?}", ages.insert("ada", &37)?);
    ages.extend([("alan".to_string(), 41), ("grace".to_string(), 85)])?;

    // Lookups borrow: a &str for a String key.
    println!("get(\"ada\") = {:?}", ages.get("ada")?);
    println!("get_many = {:?}", ages.get_many(["grace", "nobody"])?);
    println!(
        "get_or_insert_with(\"linus\") = {}",
        ages.get_or_insert_with("linus", || 28)?
    );

    // Iteration streams the hash with HSCAN; each entry is a Result.
    for entry in &ages {
        let (name, age) = entry?;
        println!("  {name} is {age}");
    }
    println!("remove(\"alan\") = {:?}", ages.remove("alan")?);
    println!("{} entries left", ages.len()?);

    ages.clear()?;
    Ok(())
}
