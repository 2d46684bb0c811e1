// Go: `wg.Add(1)` racing `wg.Wait()` ("WaitGroup is reused before previous
// Wait has returned"). Here the wait borrows the group mutably, so no token
// can be minted from it until the wait is over.
fn main() {
    let mut wg = quiescent::WaitGroup::new();
    let waiting = wg.wait_async();
    let late = wg.token();
    drop(waiting);
    drop(late);
}
