// B1: releasing one count twice ("negative WaitGroup counter") is not
// expressible: dropping a token moves it.
fn main() {
    let wg = quiescent::WaitGroup::new();
    let token = wg.token();
    drop(token);
    drop(token);
}
