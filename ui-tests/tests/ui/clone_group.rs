// A WaitGroup has one owner, the one who waits: it is not Clone.
fn main() {
    let wg = quiescent::WaitGroup::new();
    let other = wg.clone();
    drop(other);
}
