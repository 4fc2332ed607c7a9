// Settings of the taskhost web client, read by app.js. Edit this file where you host the
// page (or override any of them in the page's URL: ?api=...&region=...&client_id=...).
//   apiUrl          the API's base URL: `terraform output -raw api_endpoint`
//                   (e.g. https://abc123.execute-api.eu-west-1.amazonaws.com); empty: asked
//                   for on the sign-in screen
//   cognitoRegion   the user pool's region, and
//   cognitoClientId its app client id (`terraform output -raw cognito_client_id`): with
//                   both, the sign-in screen has an email/password form (Cognito's
//                   USER_PASSWORD_AUTH flow); without, a token can still be pasted
//   cognitoEndpoint Cognito's URL; empty: https://cognito-idp.<region>.amazonaws.com/
//                   (tests point it at cognito-local)
window.TASKHOST_CONFIG = {
  apiUrl: "",
  cognitoRegion: "",
  cognitoClientId: "",
  cognitoEndpoint: "",
};
