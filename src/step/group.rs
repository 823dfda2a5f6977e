//! A group: a `for_each` step with `steps` instead of a kind. Each element runs
//! the group's steps in order; validation lays them out right after the group
//! (as a switch's branches), and the run loop runs them per element. The group
//! has no attempt of its own: its record is its elements'.

/// What a group is once its recipe loaded.
#[derive(Debug)]
pub struct GroupStep {
    /// How many steps follow it that are its own (branch steps of a `switch`
    /// inside it included).
    pub members: usize,
}
