"""`/api/v1/sign-in-networks`: the address ranges a role's or a team's members may sign in from."""
