mod api;
fn main() {
    use kube::CustomResourceExt;
    print!("{}", serde_yaml::to_string(&api::ServiceLevelObjective::crd()).unwrap());
}
