// Sharing the group with a thread that waits, while this thread mints tokens.
fn main() {
    let mut wg = quiescent::WaitGroup::new();
    std::thread::scope(|s| {
        s.spawn(|| wg.wait());
        let _token = wg.token();
    });
}
