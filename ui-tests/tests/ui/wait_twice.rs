// Two concurrent waits on one group would need two `&mut` borrows.
fn main() {
    let mut wg = quiescent::WaitGroup::new();
    let first = wg.wait_async();
    let second = wg.wait_async();
    drop(first);
    drop(second);
}
